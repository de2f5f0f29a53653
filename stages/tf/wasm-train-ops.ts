// Training ops that tfjs composes from several kernels, each as one kernel on the wasm backend
// (loops in kernels/train.as.ts and, on the threads of kernels/pool.ts, kernels/batch-norm.as.ts,
// on the backend's heap). These round to float32 in the same order as the tfjs ops they replace
// and wasm has no fused multiply-add, so results are bit for bit those of the ops; what they save
// is kernel calls and passes over memory:
//  - SGD with momentum (optimizer.ts): ~7 kernel calls per weight per step, ~1,800 for
//    MobileNetV2, where Multiply alone was 8% of a step.
//  - ReLU6's gradient (lean-layers.ts): dy·step(y·(max − y)) was 4 passes over the activation.
//  - Batch norm's input gradient (lean-batch-norm.ts): two per-channel affine passes and an Add.
// And two that are not bit-identical to the ops, because their sums run in another order than
// XNNPACK's (per image, then over the images): batch norm's statistics in training, forward
// (mean and variance: two global average poolings, a squared difference and means) and backward
// (the means of dy and dy·x: two poolings and a multiply). They cost ~12% of a MobileNetV2 step.
// Every op but SGD runs on the pool's threads (the backend's own sit idle meanwhile), and gives
// the same bytes for any thread count.
import * as tf from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel, util } from '@tensorflow/tfjs-core';
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { separatedStride } from './kernels/pool.js';
import { heapOffset, heapOutput, kernelPool, trainKernels } from './wasm-kernels.js';

/** Inputs {w, g, buf}, attrs {lr, momentum, decay}; outputs [w′, buf′] (new tensors). */
export const SGD_MOMENTUM = 'PodiumSgdMomentum';
/** Inputs {dy, y}, attrs {maxValue}; output dy where 0 < y < maxValue, else 0 (as dy·0). */
export const RELU6_GRAD = 'PodiumRelu6Grad';
/** Input {x} (…, C), output [mean, variance] per channel, each [C] (variance biased, two-pass). */
export const BN_STATS = 'PodiumBatchNormStats';
/**
 * Inputs {dy, x} (…, C), output [mean(dy), mean(dy·x)] per channel, each [C]. With inputs scale
 * and shift [C] and attr maxValue (BN fused with ReLU(max): its output was y = clip(shift +
 * x·scale, 0, maxValue), per channel), dy is first ReLU(max)'s gradient from that y, recomputed
 * from x in the same pass: the values RELU6_GRAD would give from y, neither y read nor they written.
 */
export const BN_GRAD_STATS = 'PodiumBatchNormGradStats';
/**
 * Inputs {dy, x} (…, C) and per-channel {a, k, c} [C]; output batch norm's input gradient
 * a·dy + (k·x + c), bit for bit the two per-channel affine passes and the Add it replaces.
 * With scale, shift and maxValue, dy gated as for BN_GRAD_STATS.
 */
export const BN_INPUT_GRAD = 'PodiumBatchNormInputGrad';
const WASM = 'wasm';

function requireSame(kernel: string, like: TensorInfo, tensors: TensorInfo[]): void {
  for (const t of tensors) {
    if (t.dtype !== 'float32' || !util.arraysEqual(t.shape, like.shape)) {
      throw new Error(
        `${kernel}: inputs must be float32 of one shape, got ${t.dtype} [${t.shape.join(',')}] beside [${like.shape.join(',')}]`,
      );
    }
  }
}

const sgdMomentum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { w, g, buf } = inputs as { w: TensorInfo; g: TensorInfo; buf: TensorInfo };
  const { lr, momentum, decay } = attrs as unknown as { lr: number; momentum: number; decay: number };
  requireSame(SGD_MOMENTUM, w, [w, g, buf]);
  const b = backend as KernelBackend;
  const wOut = heapOutput(b, w.shape);
  const bufOut = heapOutput(b, w.shape);
  trainKernels(b).sgdMomentum(
    heapOffset(b, w),
    heapOffset(b, g),
    heapOffset(b, buf),
    heapOffset(b, wOut),
    heapOffset(b, bufOut),
    util.sizeFromShape(w.shape),
    lr,
    momentum,
    decay,
    decay === 0 ? 0 : 1,
  );
  return [wOut, bufOut];
};

// The passes below run on the threads of kernels/pool.ts (kernels/batch-norm.as.ts says how they
// stay bit-identical for any thread count).

/** Elements per unit of an element-wise job (a multiple of 4: whole SIMD vectors). */
const ELEMENTS_PER_UNIT = 1 << 15;

/** The float32 bits of v, as the int32 a pool job's argument is. */
function f32Bits(v: number): number {
  const bits = new Float32Array([v]);
  return new Int32Array(bits.buffer)[0]!;
}

const relu6Grad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, y } = inputs as { dy: TensorInfo; y: TensorInfo };
  const { maxValue } = attrs as unknown as { maxValue: number };
  requireSame(RELU6_GRAD, y, [dy, y]);
  const b = backend as KernelBackend;
  const out = heapOutput(b, y.shape);
  const n = util.sizeFromShape(y.shape);
  kernelPool(b).run(
    'relu6GradJob',
    [heapOffset(b, dy), heapOffset(b, y), heapOffset(b, out), n, f32Bits(maxValue), ELEMENTS_PER_UNIT],
    Math.ceil(n / ELEMENTS_PER_UNIT),
  );
  return out;
};

/** [N, rows, C] of a tensor whose last axis is the channels (N = 1 below rank 2). */
function imagesRowsChannels(t: TensorInfo): [number, number, number] {
  const c = t.shape[t.shape.length - 1] ?? 1;
  const n = t.shape.length >= 2 ? t.shape[0]! : 1;
  return [n, util.sizeFromShape(t.shape) / (n * c), c];
}

/** Scratch space for per-image sums, released before returning. */
function withScratch<T>(b: KernelBackend, floats: number, body: (at: number) => T): T {
  const scratch = heapOutput(b, [floats]);
  try {
    return body(heapOffset(b, scratch));
  } finally {
    b.disposeData(scratch.dataId);
  }
}

/** out = the mean over the images of per-image channel sums (stride floats apart), in image order. */
function meansOverImages(
  b: KernelBackend,
  sums: number,
  stride: number,
  out: TensorInfo,
  n: number,
  rows: number,
  c: number,
): void {
  kernelPool(b).run(
    'meansOverImagesJob',
    [sums, stride, heapOffset(b, out), n, c, f32Bits(Math.fround(n) * Math.fround(rows))],
    1,
  );
}

const batchNormStats: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  requireSame(BN_STATS, x, [x]);
  const b = backend as KernelBackend;
  const [n, rows, c] = imagesRowsChannels(x);
  const mean = heapOutput(b, [c]);
  const variance = heapOutput(b, [c]);
  const pool = kernelPool(b);
  const stride = separatedStride(c);
  withScratch(b, n * stride, (sums) => {
    pool.run('channelSumsJob', [heapOffset(b, x), sums, stride, rows, c], n);
    meansOverImages(b, sums, stride, mean, n, rows, c);
    pool.run('channelSquaredDeviationsJob', [heapOffset(b, x), heapOffset(b, mean), sums, stride, rows, c], n);
    meansOverImages(b, sums, stride, variance, n, rows, c);
  });
  return [mean, variance];
};

/**
 * The optional ReLU(max) of a fused BN, as its kernels take it: [scale's heap offset, shift's,
 * maxValue's float32 bits], or zeros without one.
 */
function gate(
  b: KernelBackend,
  kernel: string,
  channels: number,
  inputs: { scale?: TensorInfo; shift?: TensorInfo },
  attrs: unknown,
): [number, number, number] {
  const { scale, shift } = inputs;
  if (scale === undefined && shift === undefined) return [0, 0, 0];
  if (scale === undefined || shift === undefined) throw new Error(`${kernel}: scale and shift go together`);
  requireSame(kernel, scale, [scale, shift]);
  if (scale.shape.length !== 1 || scale.shape[0] !== channels)
    throw new Error(`${kernel}: scale and shift must be [${channels}], got [${scale.shape.join(',')}]`);
  const { maxValue } = attrs as { maxValue?: number };
  if (!(typeof maxValue === 'number' && maxValue > 0))
    throw new Error(`${kernel}: with scale, attr maxValue must be > 0`);
  return [heapOffset(b, scale), heapOffset(b, shift), f32Bits(maxValue)];
}

const batchNormGradStats: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, ...gating } = inputs as { dy: TensorInfo; x: TensorInfo; scale?: TensorInfo; shift?: TensorInfo };
  requireSame(BN_GRAD_STATS, x, [dy, x]);
  const b = backend as KernelBackend;
  const [n, rows, c] = imagesRowsChannels(x);
  const [scaleAt, shiftAt, maxBits] = gate(b, BN_GRAD_STATS, c, gating, attrs);
  const meanDy = heapOutput(b, [c]);
  const meanDyX = heapOutput(b, [c]);
  const stride = separatedStride(2 * c);
  withScratch(b, n * stride, (sums) => {
    kernelPool(b).run(
      'channelDyDyXSumsJob',
      [heapOffset(b, dy), heapOffset(b, x), scaleAt, shiftAt, maxBits, sums, stride, rows, c],
      n,
    );
    meansOverImages(b, sums, stride, meanDy, n, rows, c);
    meansOverImages(b, sums + 4 * c, stride, meanDyX, n, rows, c);
  });
  return [meanDy, meanDyX];
};

const batchNormInputGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, a, k, c, ...gating } = inputs as Record<'dy' | 'x' | 'a' | 'k' | 'c', TensorInfo> & {
    scale?: TensorInfo;
    shift?: TensorInfo;
  };
  requireSame(BN_INPUT_GRAD, x, [dy, x]);
  const channels = x.shape[x.shape.length - 1] ?? 1;
  requireSame(BN_INPUT_GRAD, a, [a, k, c]);
  if (a.shape.length !== 1 || a.shape[0] !== channels)
    throw new Error(`${BN_INPUT_GRAD}: a, k, c must be [${channels}], got [${a.shape.join(',')}]`);
  const b = backend as KernelBackend;
  const out = heapOutput(b, x.shape);
  const rows = util.sizeFromShape(x.shape) / channels;
  const perUnit = Math.max(1, Math.floor(ELEMENTS_PER_UNIT / channels));
  const [scaleAt, shiftAt, maxBits] = gate(b, BN_INPUT_GRAD, channels, gating, attrs);
  kernelPool(b).run(
    'batchNormInputGradJob',
    [
      heapOffset(b, dy),
      heapOffset(b, x),
      scaleAt,
      shiftAt,
      maxBits,
      heapOffset(b, a),
      heapOffset(b, k),
      heapOffset(b, c),
      heapOffset(b, out),
      rows,
      channels,
      perUnit,
    ],
    Math.ceil(rows / perUnit),
  );
  return out;
};

const kernels: Record<string, KernelFunc> = {
  [SGD_MOMENTUM]: sgdMomentum,
  [RELU6_GRAD]: relu6Grad,
  [BN_STATS]: batchNormStats,
  [BN_GRAD_STATS]: batchNormGradStats,
  [BN_INPUT_GRAD]: batchNormInputGrad,
};

export function registerWasmTrainOps(): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (getKernel(kernelName, WASM) === undefined) registerKernel({ kernelName, backendName: WASM, kernelFunc });
  }
}

/** For tests: with an op off, its caller falls back to the tfjs ops. */
export function setWasmTrainOp(kernelName: string, on: boolean): void {
  const registered = getKernel(kernelName, WASM) !== undefined;
  if (on && !registered) registerKernel({ kernelName, backendName: WASM, kernelFunc: kernels[kernelName]! });
  if (!on && registered) unregisterKernel(kernelName, WASM);
}

/** Whether the current backend is wasm with this op registered. */
export function hasWasmTrainOp(kernelName: string): boolean {
  return tf.getBackend() === WASM && getKernel(kernelName, WASM) !== undefined;
}
