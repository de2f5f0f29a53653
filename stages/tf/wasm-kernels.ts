// podium's own WebAssembly kernels for the tfjs wasm backend (kernels/train.as.ts, compiled
// by `npm run build`). They import the backend's heap, so they read and write tensors where the
// backend keeps them, with no copies: the threaded backend's memory is shared, the
// single-threaded one's is not, and each has its build of the module.
import type { DataType, KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

import { instantiateWasm } from '../compiled-path.js';

export interface TrainKernels {
  depthwiseFilterGrad(
    x: number, dy: number, out: number, scratch: number,
    N: number, H: number, W: number, C: number, OH: number, OW: number,
    kh: number, kw: number, sh: number, sw: number, padTop: number, padLeft: number,
  ): void;
  sgdMomentum(w: number, g: number, buf: number, wOut: number, bufOut: number, n: number, lr: number, momentum: number, decay: number, useDecay: number): void;
  relu6Grad(dy: number, y: number, out: number, n: number, maxValue: number): void;
  channelMeanVariance(x: number, mean: number, variance: number, scratch: number, N: number, rows: number, C: number): void;
  channelMeansDyDyX(dy: number, x: number, meanDy: number, meanDyX: number, scratch: number, N: number, rows: number, C: number): void;
}

/** What podium needs of tfjs-backend-wasm's BackendWasm (not exported as a type we can import). */
interface WasmBackendInternals {
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
}

const instances = new WeakMap<WebAssembly.Memory, TrainKernels>();

/** The backend's WebAssembly.Memory (its heap). */
export function heap(backend: KernelBackend): WebAssembly.Memory {
  const wasm = (backend as unknown as WasmBackendInternals).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error('podium wasm kernels: the wasm backend exposes no WebAssembly.Memory');
  return memory;
}

/** The kernels bound to this backend's heap (instantiated once per heap). */
export function trainKernels(backend: KernelBackend): TrainKernels {
  const memory = heap(backend);
  let kernels = instances.get(memory);
  if (!kernels) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    kernels = instantiateWasm(import.meta.url, shared ? 'kernels/train-shared.wasm' : 'kernels/train.wasm', { env: { memory } }) as unknown as TrainKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** Byte offset of a tensor's data in the backend's heap. */
export function heapOffset(backend: KernelBackend, t: TensorInfo): number {
  const data = (backend as unknown as WasmBackendInternals).dataIdMap.get(t.dataId);
  if (!data) throw new Error('podium wasm kernels: tensor data is not on the wasm backend');
  return data.memoryOffset;
}

/** A new, uninitialised tensor in the backend's heap (the caller's kernel fills it). */
export function heapOutput(backend: KernelBackend, shape: readonly number[], dtype: DataType = 'float32'): TensorInfo {
  return (backend as unknown as WasmBackendInternals).makeOutput([...shape], dtype);
}
