// Slice for the tfjs wasm backend, replacing the package's. Its kernel first copies the whole
// input out of the heap (readSync), then copies one innermost row per TypedArray.set: for the
// gradient of MobileNetV2's ZeroPadding2D, dy [32,65,65,96] → [32,64,64,96], that is 52 MB plus
// 131k small copies, 144 ms for 4 calls, 5% of a training step. Here the slice is copied inside
// the heap in the longest contiguous runs the geometry allows (whole 64×96 rows there).
import { getKernel, registerKernel, Slice, slice_util, unregisterKernel, util } from '@tensorflow/tfjs-core';
import type {
  KernelBackend,
  KernelConfig,
  KernelFunc,
  SliceAttrs,
  SliceInputs,
  TensorInfo,
} from '@tensorflow/tfjs-core';

import { heap, heapOffset, heapOutput } from './wasm-kernels.js';

const WASM = 'wasm';
const BYTES: Partial<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };

/** The package's kernel: strings and complex numbers are not plain bytes in the heap. */
let packageSlice: KernelConfig | undefined;

export const sliceKernel: KernelFunc = (args) => {
  const x = (args.inputs as unknown as SliceInputs).x as TensorInfo;
  const { begin, size } = args.attrs as unknown as SliceAttrs;
  const bytes = BYTES[x.dtype];
  if (bytes === undefined) {
    if (!packageSlice) throw new Error(`Slice (podium wasm): dtype ${x.dtype} is not supported`);
    return packageSlice.kernelFunc(args);
  }
  const backend = args.backend as KernelBackend;
  const [b, s] = slice_util.parseSliceParams(x as never, begin, size) as [number[], number[]];
  const out = heapOutput(backend, s, x.dtype);
  if (util.sizeFromShape(s) === 0) return out;
  // The innermost axes taken whole, and the first one cut, form one contiguous run per index of
  // the axes outside them.
  const shape = x.shape;
  let axis = shape.length - 1;
  let run = 1;
  while (axis >= 0 && b[axis] === 0 && s[axis] === shape[axis]) run *= shape[axis--]!;
  const strides = [...util.computeStrides(shape), 1]; // in elements, the last axis included
  if (axis >= 0) run *= s[axis]!;
  const src = heapOffset(backend, x);
  const dst = heapOffset(backend, out);
  // After makeOutput: growing the heap replaces the buffer.
  const u8 = new Uint8Array(heap(backend).buffer);
  const runBytes = run * bytes;
  if (axis < 0) {
    u8.copyWithin(dst, src, src + runBytes);
    return out;
  }
  let base = 0;
  for (let d = 0; d <= axis; d++) base += b[d]! * strides[d]!;
  // Odometer over the outer axes 0 … axis−1.
  const index = new Array<number>(axis).fill(0);
  for (let o = dst; ; o += runBytes) {
    let at = base;
    for (let d = 0; d < axis; d++) at += index[d]! * strides[d]!;
    u8.copyWithin(o, src + at * bytes, src + at * bytes + runBytes);
    let d = axis - 1;
    while (d >= 0 && ++index[d]! === s[d]) index[d--] = 0;
    if (d < 0) break;
  }
  return out;
};

/** Replaces the wasm backend's Slice (idempotent); call before or after setBackend. */
export function registerWasmSlice(): void {
  const existing = getKernel(Slice, WASM) as KernelConfig | undefined;
  if (existing?.kernelFunc === sliceKernel) return;
  packageSlice = existing;
  if (existing) unregisterKernel(Slice, WASM);
  registerKernel({ kernelName: Slice, backendName: WASM, kernelFunc: sliceKernel });
}
