"""PyTorch's side of bench/train.mjs and bench/predict.mjs: the same model and work, measured in
the same run on the same machine, so the ratio the benchmarks print is not against a figure from
another machine. Bench-only: run with Debian's /usr/bin/python3 (python3-torch,
python3-torchvision); never part of podium's set-up.

torchvision's MobileNetV2 (random weights: throughput does not depend on them), 6 classes, batch
32, SGD momentum 0.9 and weight decay 1e-4 over every parameter, inputs in [0, 1]; both memory
layouts (NCHW and channels_last), torch_bench style: warm-up steps untimed, then the median of
three timed rounds. Prints one JSON object: {"torch": version, "threads": n, "<what>": {"nchw":
img/s, "channels_last": img/s}}.

    /usr/bin/python3 bench/torch_ref.py [--threads 2] [--quick] [--only train128,train224,infer128,infer224]
"""
import argparse
import json
import statistics
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument('--threads', type=int, default=2)
parser.add_argument('--batch', type=int, default=32)
parser.add_argument('--quick', action='store_true')
parser.add_argument('--only', default='train128,train224,infer128,infer224')
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)


def model_in(layout):
    m = torchvision.models.mobilenet_v2(num_classes=6)
    return m.to(memory_format=torch.channels_last) if layout == 'channels_last' else m


def batch(size, layout):
    x = torch.rand(args.batch, 3, size, size)
    if layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x, torch.arange(args.batch) % 6


def rate(step, warmup, rounds, per_round):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            step()
        times.append(time.perf_counter() - t0)
    return args.batch * per_round / statistics.median(times)


def train(size, layout):
    m = model_in(layout).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x, y = batch(size, layout)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return rate(step, 1 if args.quick else 2, 1 if args.quick else 3, 1 if args.quick else (5 if size <= 128 else 2))


def infer(size, layout):
    m = model_in(layout).eval()
    x, _ = batch(size, layout)

    def step():
        with torch.no_grad():
            m(x)
    return rate(step, 1 if args.quick else 2, 1 if args.quick else 3, 1 if args.quick else 5)


work = {'train128': lambda l: train(128, l), 'train224': lambda l: train(224, l),
        'infer128': lambda l: infer(128, l), 'infer224': lambda l: infer(224, l)}
out = {'torch': torch.__version__, 'threads': args.threads, 'batch': args.batch}
for name in args.only.split(','):
    out[name] = {layout: round(work[name](layout), 2) for layout in ('nchw', 'channels_last')}
print(json.dumps(out))
