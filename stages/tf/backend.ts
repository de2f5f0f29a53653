/**
 * Choosing the TensorFlow.js backend a training or prediction process runs on.
 *
 * Order for `auto` (AUTO_ORDER in backend-names.ts, as the README tells it):
 * `@tensorflow/tfjs-node-gpu`, `webgpu` on a hardware adapter (never a software/fallback one:
 * webgpu.ts), `@tensorflow/tfjs-node`, `wasm`, `cpu`.
 * What `auto` passed over, and why, is logged with what it chose.
 *
 * Why the node packages are imported by a variable name: they download libtensorflow at install
 * time from a host our machines cannot reach, so they are not dependencies of podium; a user who
 * has them gets them. A literal `import('@tensorflow/tfjs-node')` would make TypeScript (and any
 * bundler) demand the package; `import(name)` with `name: string` does not.
 *
 * One tfjs-core instance: every tfjs package here (core, layers, wasm, cpu, webgpu, and the
 * optional node packages) resolves `@tensorflow/tfjs-core` through Node's `main` field, i.e. the
 * same CommonJS module, so kernels and backends registered by one are seen by all. A tfjs-node
 * build of another version would bring its own nested tfjs-core and register its backend there,
 * invisible to us; we check for that and say so instead of silently training on another backend.
 *
 * Determinism: wasm (threaded: see wasm-threads.ts) and cpu compute every output in a fixed order,
 * whatever the thread count, so the same inputs give bit-identical results on the same backend.
 * webgpu's kernels write each output from one invocation (no atomics in the training kernels), so
 * one adapter repeats itself bit for bit (tested on lavapipe: test/gpu/). tfjs-node uses
 * TensorFlow's CPU/GPU kernels, whose reductions may be multi-threaded; podium records which
 * backend ran so a verify on another backend is not mistaken for a regression.
 */
import { availableParallelism } from 'node:os';

import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
// tfjs-layers registers every gradient function with tfjs-core on import (tf.grad, tf.variableGrads
// need them) and provides the LayersModel used by models.ts. Imported here so that selecting a
// backend always yields a core with gradients registered.
import '@tensorflow/tfjs-layers';

import { StageError, type StageContext } from '../contract.js';
import { registerWasmGradientKernels } from './wasm-gradients.js';
import { registerWasmTrainOps } from './wasm-train-ops.js';
import { registerWasmSlice } from './wasm-slice.js';
import { registerThreadedWasm, threadedWasmFailure } from './wasm-threads.js';
import type { BackendPreference } from './backend-names.js';
import { tryWebgpu } from './webgpu.js';

export type { BackendPreference } from './backend-names.js';

export interface SelectedBackend {
  /** tfjs backend name: 'tensorflow' (tfjs-node / tfjs-node-gpu), 'webgpu', 'wasm' or 'cpu'. */
  name: string;
  /** The single tfjs-core instance everything in podium uses. */
  tf: typeof import('@tensorflow/tfjs-core');
  /** Human-readable detail for run records, e.g. '@tensorflow/tfjs-node-gpu' or 'wasm (simd)'. */
  detail: string;
  /** For the log: what `auto` passed over and why, and warnings (a software webgpu adapter). */
  notes: string[];
}

const NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** Imports a package whose name TypeScript must not resolve at compile time. */
async function importOptional(name: string): Promise<unknown> {
  return import(name);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.message;
  return String(err);
}

/** Tries the native TensorFlow packages in order; returns the failures when none works. */
async function tryTensorflow(packages: readonly string[] = NODE_PACKAGES): Promise<SelectedBackend | string[]> {
  const failures: string[] = [];
  for (const pkg of packages) {
    try {
      await importOptional(pkg);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      failures.push(code === 'ERR_MODULE_NOT_FOUND' ? `${pkg}: not installed` : `${pkg}: ${errorText(err)}`);
      continue;
    }
    // The package registers the 'tensorflow' backend on import; if it did so in another
    // tfjs-core instance (version mismatch), ours does not know it.
    if (tf.findBackendFactory('tensorflow') === null) {
      failures.push(
        `${pkg}: loaded, but its backend is not registered in podium's @tensorflow/tfjs-core ${tf.version_core} ` +
          `(it probably depends on another tfjs-core version; install ${pkg}@${tf.version_core})`,
      );
      continue;
    }
    try {
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        return { name: 'tensorflow', tf, detail: pkg, notes: [] };
      }
      failures.push(`${pkg}: the 'tensorflow' backend failed to initialise`);
    } catch (err) {
      failures.push(`${pkg}: ${errorText(err)}`);
    }
  }
  return failures;
}

let wasmRegistered = false;

async function tryWasm(threads: number): Promise<SelectedBackend | string> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // Once per process: the first initialisation fixes the thread count (wasm-threads.ts says
    // why podium loads the threaded build itself; it reads the binaries from node_modules by path).
    if (!wasmRegistered) {
      registerThreadedWasm(tf, wasm, threads);
      wasmRegistered = true;
    }
    // Before setBackend: our gradient kernels are looked up at run time, and registering first
    // means no kernel of a model ever runs on wasm without them.
    registerWasmGradientKernels();
    registerWasmSlice();
    registerWasmTrainOps();
    registerWasmSharingIdentity();
    if (!(await tf.setBackend('wasm'))) return 'wasm: the backend failed to initialise';
    await tf.ready();
    const n = wasm.getThreadsCount();
    const failure = threadedWasmFailure();
    const why = failure === undefined ? '' : `; threaded build unavailable: ${failure}`;
    return { name: 'wasm', tf, detail: `wasm (simd, ${n} thread${n === 1 ? '' : 's'}${why})`, notes: [] };
  } catch (err) {
    return `wasm: ${errorText(err)}`;
  }
}

/**
 * wasm's Identity kernel copies its input; the cpu backend's shares the buffer (reference
 * counted), as wasm's own Reshape does. Identity is what tf.clone runs, and the engine clones
 * every tensor it saves for a backward pass — so on wasm each saved activation existed twice
 * (212 MB of 447 MB at the end of a batch-8, 128-px MobileNetV2 forward pass) and the copies
 * cost time. tfjs tensors are immutable (Variable.assign swaps the buffer, never writes into
 * it), so sharing is safe; we register the cpu backend's behaviour for wasm.
 */
const sharingIdentity: KernelFunc = ({ inputs, backend }) => {
  const x = inputs['x'] as TensorInfo;
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

function registerWasmSharingIdentity(): void {
  const current = tf.getKernel(tf.Identity, 'wasm') as KernelConfig | undefined;
  if (current?.kernelFunc === sharingIdentity) return;
  if (current !== undefined) tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharingIdentity });
}

async function useCpu(): Promise<SelectedBackend> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('the tfjs cpu backend failed to initialise');
  await tf.ready();
  return { name: 'cpu', tf, detail: 'cpu (pure JavaScript; not a training path)', notes: [] };
}

/** `auto`'s choice, with every backend it passed over and why (so the log explains the pick). */
async function selectAuto(threads: number): Promise<SelectedBackend> {
  const passed: string[] = [];
  const chose = (b: SelectedBackend): SelectedBackend => ({
    ...b,
    notes: [...passed.map((p) => `auto passed over ${p}`), `auto chose ${b.detail}`],
  });
  const gpu = await tryTensorflow([NODE_PACKAGES[0]]);
  if (!Array.isArray(gpu)) return chose(gpu);
  passed.push(...gpu);
  const webgpu = await tryWebgpu(tf, false);
  if (typeof webgpu !== 'string') return chose({ name: 'webgpu', tf, detail: webgpu.detail, notes: [] });
  passed.push(webgpu);
  const cpuTf = await tryTensorflow([NODE_PACKAGES[1]]);
  if (!Array.isArray(cpuTf)) return chose(cpuTf);
  passed.push(...cpuTf);
  const wasm = await tryWasm(threads);
  if (typeof wasm !== 'string') return chose(wasm);
  passed.push(wasm);
  return chose(await useCpu());
}

/**
 * Makes the preferred backend the active tfjs backend and returns it.
 *
 * - `auto`: tfjs-node-gpu → webgpu (hardware adapter only) → tfjs-node → wasm → cpu, falling
 *   through on any failure.
 * - `tensorflow`: tfjs-node-gpu or tfjs-node, else an error saying how to get them.
 * - `webgpu`: Dawn's adapter, a software one included (with a warning in `notes`), else an error.
 * - `wasm` / `cpu`: exactly that backend, else an error.
 */
export async function selectBackend(
  pref: BackendPreference,
  threads = availableParallelism(),
): Promise<SelectedBackend> {
  switch (pref) {
    case 'auto':
      return selectAuto(threads);
    case 'tensorflow': {
      const native = await tryTensorflow();
      if (!Array.isArray(native)) return native;
      throw new StageError(
        `backend 'tensorflow' is not available (${native.join('; ')}). ` +
          'Install @tensorflow/tfjs-node-gpu where libtensorflow can be downloaded ' +
          `(its install script fetches it from storage.googleapis.com), matching @tensorflow/tfjs-core ${tf.version_core}, ` +
          "or use backend 'auto' or 'wasm'.",
      );
    }
    case 'webgpu': {
      const adapter = await tryWebgpu(tf, true);
      if (typeof adapter === 'string') throw new Error(`backend 'webgpu' is not available: ${adapter} (docs/gpu.md)`);
      const notes = adapter.fallback
        ? [
            `warning: ${adapter.detail} is a software adapter: correct but slow (a CPU runs the shaders), for tests, not training (docs/gpu.md)`,
          ]
        : [];
      return { name: 'webgpu', tf, detail: adapter.detail, notes };
    }
    case 'wasm': {
      const wasm = await tryWasm(threads);
      if (typeof wasm === 'string') throw new StageError(`backend 'wasm' is not available: ${wasm}`);
      return wasm;
    }
    case 'cpu':
      return useCpu();
    default:
      return unreachable(pref);
  }
}

function unreachable(value: never): never {
  throw new Error(`unknown backend preference: ${String(value)}`);
}

/**
 * The backend a TensorFlow stage runs on: its `backend` param, with the share of the cores the
 * runner gave the stage, logged so the stage's log and record say what ran.
 */
export async function stageBackend(
  ctx: Pick<StageContext, 'threads' | 'log'>,
  pref: BackendPreference,
): Promise<SelectedBackend> {
  const backend = await selectBackend(pref, ctx.threads);
  for (const note of backend.notes) ctx.log(note);
  ctx.log(`backend ${backend.detail}`);
  return backend;
}
