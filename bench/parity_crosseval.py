# Parity (issue 17.6): PyTorch's trained recipe-A models (bench/parity.mjs's runs, REF_DIR/results/*.pt)
# scored with one centre crop on PIL's pixels (their own loader's) and on podium's decoded pixels
# (bench/parity-pixels.mjs), val and test: whether the evaluation pixels explain a podium-PyTorch gap.
#
#   node bench/parity-pixels.mjs && REF_DIR=/tmp/podium-parity/torch DEV_DATA=../shared/datasets/intel6 \
#     /usr/bin/python3 bench/parity_crosseval.py [--pixels /tmp/podium-parity] [--size 146] [--crop 128]
import argparse
import glob
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.environ["REF_DIR"])  # torchref's data.py and kerasmnv2.py, copied there by bench/parity.mjs
import data  # noqa: E402
from kerasmnv2 import build_backbone  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--pixels', default='/tmp/podium-parity')
p.add_argument('--size', type=int, default=146)
p.add_argument('--crop', type=int, default=128)
args = p.parse_args()
torch.set_num_threads(2)

splits = {}
for split in ['val', 'test']:
    pil, y = data.load_split(split, args.size)
    raw = np.fromfile('%s/podium_%s_%d.u8' % (args.pixels, split, args.size), dtype=np.uint8)
    pod = torch.from_numpy(raw.reshape(-1, args.size, args.size, 3).transpose(0, 3, 1, 2).copy())
    d = (pil.int() - pod.int()).abs().float()
    print('%s: %d images; |PIL - podium| per value: mean %.3f, max %d, equal %.1f%%'
          % (split, len(y), d.mean(), d.max(), 100 * (d == 0).float().mean()))
    splits[split] = (pil, pod, y)


@torch.no_grad()
def top1(model, x, y):
    correct = 0
    for i in range(0, len(x), 100):
        v = data.center_crop(x[i:i + 100], args.crop)
        correct += (model(data.to_float(v)).argmax(1) == y[i:i + 100]).sum().item()
    return 100.0 * correct / len(x)


print('| model | val, PIL pixels | val, podium pixels | test, PIL pixels | test, podium pixels |')
print('|---|---|---|---|---|')
for pt in sorted(glob.glob(os.environ["REF_DIR"] + '/results/*.pt')):
    model = build_backbone(len(data.CLASSES))
    model.load_state_dict(torch.load(pt))
    model.eval()
    r = [top1(model, splits[s][k], splits[s][2]) for s in ['val', 'test'] for k in (0, 1)]
    print('| %s | %.2f | %.2f | %.2f | %.2f |' % (os.path.basename(pt)[:-3], *r), flush=True)
