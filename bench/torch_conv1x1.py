"""PyTorch's side of bench/gemm-peak.mjs: GFLOP/s of a 1×1 convolution's forward pass (channels_last,
float32, the given threads), the GEMM at the heart of MobileNetV2's training step. Bench-only: run with
Debian's /usr/bin/python3 (python3-torch); never part of podium's set-up.

    /usr/bin/python3 bench/torch_conv1x1.py --threads 1 --shapes 32,56,24,144 32,14,384,64 ...

Each shape is N,H,C,Co (x [N, C, H, H] in channels_last, weight [Co, C, 1, 1]). Prints one JSON
object: {"torch": version, "threads": n, "N,H,C,Co": GFLOP/s, ...} (median of 5 timed calls after 2).
"""
import argparse
import json
import statistics
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument('--threads', type=int, default=1)
parser.add_argument('--shapes', nargs='+', required=True)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
out = {'torch': torch.__version__, 'threads': args.threads}
with torch.no_grad():
    for shape in args.shapes:
        n, h, c, co = (int(v) for v in shape.split(','))
        x = torch.rand(n, c, h, h).to(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(c, co, 1, bias=False).to(memory_format=torch.channels_last)
        times = []
        for i in range(7):
            t0 = time.perf_counter()
            conv(x)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out[shape] = 2 * n * h * h * c * co / statistics.median(times) / 1e9
print(json.dumps(out))
