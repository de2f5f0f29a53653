// Training ops that tfjs composes from several kernels, each as one kernel on the wasm backend
// (loops in kernels/train.as.ts, on the backend's heap). Every one rounds to float32 in the same
// order as the tfjs ops it replaces and wasm has no fused multiply-add, so results are bit for
// bit those of the ops; what they save is kernel calls and passes over memory.
//  - SGD with momentum (train-loop.ts): ~7 kernel calls per weight per step, ~1,800 for
//    MobileNetV2, where Multiply alone was 8% of a step.
//  - ReLU6's gradient (lean-layers.ts): dy·step(y·(max − y)) was 4 passes over the activation.
import * as tf from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel, util } from '@tensorflow/tfjs-core';
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { heapOffset, trainKernels } from './wasm-kernels.js';

/** Inputs {w, g, buf}, attrs {lr, momentum, decay}; outputs [w′, buf′] (new tensors). */
export const SGD_MOMENTUM = 'PodiumSgdMomentum';
/** Inputs {dy, y}, attrs {maxValue}; output dy where 0 < y < maxValue, else 0 (as dy·0). */
export const RELU6_GRAD = 'PodiumRelu6Grad';
const WASM = 'wasm';

type Backend = KernelBackend & { makeOutput(shape: number[], dtype: 'float32'): TensorInfo };

function requireSame(kernel: string, like: TensorInfo, tensors: TensorInfo[]): void {
  for (const t of tensors) {
    if (t.dtype !== 'float32' || !util.arraysEqual(t.shape, like.shape)) {
      throw new Error(`${kernel}: inputs must be float32 of one shape, got ${t.dtype} [${t.shape.join(',')}] beside [${like.shape.join(',')}]`);
    }
  }
}

const sgdMomentum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { w, g, buf } = inputs as { w: TensorInfo; g: TensorInfo; buf: TensorInfo };
  const { lr, momentum, decay } = attrs as unknown as { lr: number; momentum: number; decay: number };
  requireSame(SGD_MOMENTUM, w, [w, g, buf]);
  const b = backend as Backend;
  const wOut = b.makeOutput([...w.shape], 'float32');
  const bufOut = b.makeOutput([...w.shape], 'float32');
  trainKernels(b).sgdMomentum(
    heapOffset(b, w), heapOffset(b, g), heapOffset(b, buf), heapOffset(b, wOut), heapOffset(b, bufOut),
    util.sizeFromShape(w.shape), lr, momentum, decay, decay === 0 ? 0 : 1,
  );
  return [wOut, bufOut];
};

const relu6Grad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, y } = inputs as { dy: TensorInfo; y: TensorInfo };
  const { maxValue } = attrs as unknown as { maxValue: number };
  requireSame(RELU6_GRAD, y, [dy, y]);
  const b = backend as Backend;
  const out = b.makeOutput([...y.shape], 'float32');
  trainKernels(b).relu6Grad(heapOffset(b, dy), heapOffset(b, y), heapOffset(b, out), util.sizeFromShape(y.shape), maxValue);
  return out;
};

const kernels: Record<string, KernelFunc> = { [SGD_MOMENTUM]: sgdMomentum, [RELU6_GRAD]: relu6Grad };

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
