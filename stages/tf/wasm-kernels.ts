// podium's own WebAssembly kernels for the tfjs wasm backend (kernels/train.as.ts for the
// calling thread, kernels/pool-jobs.as.ts for the threads of kernels/pool.ts; compiled by
// `npm run build`). They import the backend's heap, so they read and write tensors where the
// backend keeps them, with no copies: the threaded backend's memory is shared, the
// single-threaded one's is not, and each has its build of the module.
import { readFileSync } from 'node:fs';

import type { DataType, KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

import { compiledPath, instantiateWasm } from '../compiled-path.js';
import { UnitPool } from './kernels/pool.js';

export interface TrainKernels {
  sgdMomentum(
    w: number,
    g: number,
    buf: number,
    wOut: number,
    bufOut: number,
    n: number,
    lr: number,
    momentum: number,
    decay: number,
    useDecay: number,
  ): void;
}

/** What podium needs of tfjs-backend-wasm's BackendWasm (not exported as a type we can import). */
interface WasmBackendInternals {
  wasm: {
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
    tfjs?: { getThreadsCount?: () => number };
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
}

const instances = new WeakMap<WebAssembly.Memory, TrainKernels>();

/** The backend's WebAssembly.Memory (its heap). */
export function heap(backend: KernelBackend): WebAssembly.Memory {
  const wasm = (backend as unknown as WasmBackendInternals).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory))
    throw new Error('podium wasm kernels: the wasm backend exposes no WebAssembly.Memory');
  return memory;
}

/** The kernels bound to this backend's heap (instantiated once per heap). */
export function trainKernels(backend: KernelBackend): TrainKernels {
  const memory = heap(backend);
  let kernels = instances.get(memory);
  if (!kernels) {
    kernels = instantiateWasm(import.meta.url, isShared(memory) ? 'kernels/train-shared.wasm' : 'kernels/train.wasm', {
      env: { memory },
    }) as unknown as TrainKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** Whether the backend's heap is shared between threads (the threaded build). */
function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

const pools = new WeakMap<WebAssembly.Memory, UnitPool>();

/** The exports of kernels/pool-jobs.as.ts, each run as a pool job (kernels/pool.ts). */
export const POOL_JOBS = [
  'filterGradJob',
  'sumChunksJob',
  'depthwiseFilterGradJob',
  'depthwiseInputGradJob',
  'channelSumsJob',
  'channelSquaredDeviationsJob',
  'channelDyDyXSumsJob',
  'meansOverImagesJob',
  'relu6GradJob',
  'batchNormInputGradJob',
] as const;

/**
 * kernels/pool-jobs.as.ts on this backend's heap, with as many threads as the backend's XNNPACK
 * pool (they take turns: the backend's threads are idle while a podium kernel runs). The
 * single-threaded build's heap is not shared: then the caller's thread does all the units.
 */
export function kernelPool(backend: KernelBackend): UnitPool {
  const memory = heap(backend);
  let pool = pools.get(memory);
  if (!pool) {
    const shared = isShared(memory);
    const path = compiledPath(import.meta.url, shared ? 'kernels/pool-jobs-shared.wasm' : 'kernels/pool-jobs.wasm');
    let bytes: Buffer<ArrayBuffer>;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new Error(`WebAssembly kernel ${path} is missing (run npm run build)`);
    }
    const module = new WebAssembly.Module(bytes);
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const threads = (backend as unknown as WasmBackendInternals).wasm.tfjs?.getThreadsCount?.() ?? 1;
    pool = new UnitPool(module, instance, memory, POOL_JOBS, shared ? threads : 1);
    pools.set(memory, pool);
  }
  return pool;
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
