import os
"""A copy of ../shared/torchref/train.py with two additions, --wd_on and --head_init, for bench/parity.mjs: `kernels` puts
weight decay on convolution and linear weights only (every parameter with 2+ dimensions), as podium's
finetune does (stages/tf/optimizer.ts decays variables named *kernel); `all` (the default) is
PyTorch's SGD(weight_decay=...) on every parameter, the reference recipe. Run from $REF_DIR set up
as ../shared/torchref/README.md says (it imports data.py and kerasmnv2.py from there).

Fine-tune the nsfwjs-pretrained MobileNetV2 backbone (kerasmnv2.py) on the 6-class Intel scenes split.

Head: global average pool + Linear(1280, 6) (no dropout). All layers trainable, BN in train mode.
Inputs x/255 in [0,1], NCHW channels_last. Train aug: shorter side -> --resize, random crop --crop, h-flip.
Eval: centre crop (1-crop) and 10-crop (4 corners + centre + mirrors; softmax averaged), at every
--eval_scales entry crop:resize.

example: train.py --name A_lr0.01 --lr 0.01 --wd 1e-4 --epochs 12 --milestones 8
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.environ["REF_DIR"] + '')
import data
from kerasmnv2 import build_backbone

p = argparse.ArgumentParser()
p.add_argument('--name', required=True)
p.add_argument('--lr', type=float, default=0.01)
p.add_argument('--wd', type=float, default=1e-4)
p.add_argument('--momentum', type=float, default=0.9)
p.add_argument('--epochs', type=int, default=12)
p.add_argument('--milestones', type=int, nargs='*', default=[8])
p.add_argument('--bs', type=int, default=32)
p.add_argument('--crop', type=int, default=128)
p.add_argument('--resize', type=int, default=146)
p.add_argument('--eval_scales', default='128:146,160:183')
p.add_argument('--bn_momentum', type=float, default=0.1)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--wd_on', choices=['all', 'kernels'], default='all')
# The classifier's init: torchvision's N(0, 0.01²) (kerasmnv2.py), or Keras's Glorot-uniform (podium's
# finetune before it had headInit), to test the init's effect from this side too.
p.add_argument('--head_init', choices=['normal-0.01', 'glorot-uniform'], default='normal-0.01')
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
gen = torch.Generator().manual_seed(args.seed)
CL = torch.channels_last

xtr, ytr = data.load_split('train', args.resize)
xva, yva = data.load_split('val', args.resize)
xte, yte = data.load_split('test', args.resize)

model = build_backbone(len(data.CLASSES), bn_momentum=args.bn_momentum).to(memory_format=CL)
if args.head_init == 'glorot-uniform':
    torch.nn.init.xavier_uniform_(model.classifier.weight)
if args.wd_on == 'kernels':
    # BN gamma/beta and biases are 1-D; conv (incl. depthwise) and linear weights are not.
    decayed = [q for q in model.parameters() if q.dim() > 1]
    kept = [q for q in model.parameters() if q.dim() <= 1]
    groups = [dict(params=decayed, weight_decay=args.wd), dict(params=kept, weight_decay=0.0)]
else:
    groups = [dict(params=list(model.parameters()), weight_decay=args.wd)]
opt = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=args.milestones, gamma=0.1)


@torch.no_grad()
def evaluate(x, y, crop, ten=False, bs=100):
    model.eval()
    correct = 0
    for i in range(0, len(x), bs):
        xb = x[i:i + bs]
        views = data.ten_crops(xb, crop) if ten else [data.center_crop(xb, crop)]
        prob = 0
        for v in views:
            prob = prob + F.softmax(model(data.to_float(v).contiguous(memory_format=CL)), 1)
        correct += (prob.argmax(1) == y[i:i + bs]).sum().item()
    return 100.0 * correct / len(x)


log = {'args': vars(args), 'epochs': []}
print(json.dumps(vars(args)), flush=True)
n = len(xtr)
train_time, train_imgs = 0.0, 0
for ep in range(args.epochs):
    model.train()
    perm = torch.randperm(n, generator=gen)
    t0 = time.time()
    tl, tc, seen = 0.0, 0, 0
    for i in range(0, n, args.bs):           # last partial batch kept (1920 = 60 x 32 anyway)
        idx = perm[i:i + args.bs]
        xb = data.random_crop_flip(xtr[idx], args.crop, gen).contiguous(memory_format=CL)
        yb = ytr[idx]
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tl += loss.item() * len(idx); tc += (out.argmax(1) == yb).sum().item(); seen += len(idx)
    dt = time.time() - t0
    train_time += dt; train_imgs += seen
    lr = opt.param_groups[0]['lr']
    sched.step()
    va = evaluate(xva, yva, args.crop)
    te = evaluate(xte, yte, args.crop)
    rec = dict(epoch=ep + 1, lr=lr, train_loss=tl / seen, train_acc=100.0 * tc / seen, val=va, test=te,
               img_s=seen / dt, epoch_s=dt)
    log['epochs'].append(rec)
    print('ep %2d lr %.4g loss %.4f train %.2f | val %.2f test %.2f | %.1f img/s (%.0fs)' % (
        ep + 1, lr, rec['train_loss'], rec['train_acc'], va, te, rec['img_s'], dt), flush=True)

final = {}
for sc in args.eval_scales.split(','):
    crop, S = map(int, sc.split(':'))
    if S == args.resize:
        xv, xt = xva, xte
    else:
        xv, _ = data.load_split('val', S)
        xt, _ = data.load_split('test', S)
    r = dict(val_1crop=evaluate(xv, yva, crop), test_1crop=evaluate(xt, yte, crop),
             val_10crop=evaluate(xv, yva, crop, ten=True), test_10crop=evaluate(xt, yte, crop, ten=True))
    final['%d(resize %d)' % (crop, S)] = r
    print('final @ crop %d resize %d: val 1-crop %.2f 10-crop %.2f | test 1-crop %.2f 10-crop %.2f' % (
        crop, S, r['val_1crop'], r['val_10crop'], r['test_1crop'], r['test_10crop']), flush=True)
log['final'] = final
log['train_img_s_mean'] = train_imgs / train_time
log['train_time_s'] = train_time
print('mean train img/s %.1f, train time %.0fs' % (log['train_img_s_mean'], train_time), flush=True)
json.dump(log, open(os.environ["REF_DIR"] + '/results/%s.json' % args.name, 'w'), indent=1)
torch.save(model.state_dict(), os.environ["REF_DIR"] + '/results/%s.pt' % args.name)
