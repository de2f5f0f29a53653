/**
 * The multi-threaded build of @tensorflow/tfjs-backend-wasm, made to work under Node.
 *
 * Why: the package ships a threaded SIMD build (XNNPACK with a pthreadpool, emscripten pthreads on
 * worker_threads), but its loader only uses it in browsers. Under Node it fails twice, and even
 * with both fixed it would run one thread on a 2-core machine:
 *  1. It hands emscripten the pthread worker script as a `blob:` URL; Node's worker_threads
 *     accept only file paths (ERR_WORKER_PATH). We write the script (the package exports its text
 *     as `wasmWorkerContents`) to a file and point `locateFile` at it.
 *  2. It passes the main script to each pthread as a Blob, which the worker script can only
 *     `importScripts` by path under Node. We pass the path of the package's own factory file.
 *  3. The C++ side sizes its pool as `min(requested, logical cores / 2)` (it assumes
 *     hyper-threading), read once while the module initialises through emscripten's
 *     `require("os").cpus().length`. On 2 vCPUs that is 1 thread whatever we ask. We make
 *     `os.cpus()` report twice the wanted count for exactly that initialisation.
 * The tfjs PR that tried to support Node threads (tfjs#8059) was closed unmerged; this does the
 * same from the outside, through the package's public `BackendWasm` class and factory file. If
 * the threaded build cannot start, the package's own single-threaded loader takes over and the
 * backend detail says why.
 *
 * Determinism: XNNPACK splits a convolution or matrix product by output tiles; each output's sum
 * runs in the same order whatever the thread count, and tfjs's own reductions are
 * single-threaded, so results are bit-identical for 1 and N threads (checked by a test).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';

import type * as tfCore from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);

/** The pthread pool the threaded build pre-spawns (PTHREAD_POOL_SIZE): the most it can use. */
export const MAX_WASM_THREADS = 8;

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: number[]) => number;
  tfjs?: unknown;
  PThread: { runningWorkers: Array<{ unref(): void }>; unusedWorkers: Array<{ unref(): void }> };
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

function wasmOutDir(): string {
  // The package's `main` is dist/tf-backend-wasm.node.js; the emscripten outputs sit in wasm-out/.
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
}

/**
 * Writes the pthread worker script where worker_threads can load it: a `.cjs` file (the worker
 * uses `require`) under the OS temp dir, named by package version so versions never mix, written
 * atomically so two processes starting at once never see half a file.
 */
function workerScriptFile(outDir: string): string {
  const version = (JSON.parse(readFileSync(join(outDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(os.tmpdir(), 'podium-tfjs-wasm');
  const file = join(dir, `pthread-worker-${version}.cjs`);
  const { wasmWorkerContents } = require(join(outDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  // The exported text holds "\n" escapes inside string literals that must stay escapes
  // (tfjs's own loader does the same replacement before making its Blob).
  writeFileSync(tmp, wasmWorkerContents.replace(/\n/g, '\\n'));
  renameSync(tmp, file);
  return file;
}

/**
 * Registers a 'wasm' backend that runs the threaded SIMD build with `threads` XNNPACK threads,
 * replacing the package's registration (kernels are registered per backend name, so every wasm
 * kernel, ours included, applies unchanged). Call before `tf.setBackend('wasm')`.
 */
export function registerThreadedWasm(
  tf: typeof tfCore,
  wasmPackage: typeof import('@tensorflow/tfjs-backend-wasm'),
  threads: number,
): void {
  const wanted = Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(threads)));
  const outDir = wasmOutDir();
  const factory = require(join(outDir, 'tfjs-backend-wasm-threaded-simd.js')) as Factory;
  // The package's own (single-threaded) loader stays the fallback: training is slower without
  // threads, never impossible.
  const packaged = tf.findBackendFactory('wasm');
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      try {
        return await threadedBackend(wasmPackage, factory, outDir, wanted);
      } catch (err) {
        if (!packaged) throw err;
        threadedFailure = (err as Error).message ?? String(err);
        return packaged();
      }
    },
    2,
  );
}

let threadedFailure: string | undefined;

/** Why the threaded build could not be used in this process (then wasm runs on one thread). */
export function threadedWasmFailure(): string | undefined {
  return threadedFailure;
}

async function threadedBackend(
  wasmPackage: typeof import('@tensorflow/tfjs-backend-wasm'),
  factory: Factory,
  outDir: string,
  wanted: number,
): Promise<tfCore.KernelBackend> {
  const workerFile = workerScriptFile(outDir);
  const realCpus = os.cpus;
  os.cpus = () => Array.from({ length: 2 * wanted }, () => realCpus()[0]!);
  const listenersBefore = {
    uncaught: process.listeners('uncaughtException'),
    unhandled: process.listeners('unhandledRejection'),
  };
  let module: EmscriptenModule;
  try {
    module = await factory({
      locateFile: (path: string, prefix: string) => {
        if (path.endsWith('.worker.js')) return workerFile;
        if (path.endsWith('.wasm')) return join(outDir, 'tfjs-backend-wasm-threaded-simd.wasm');
        return prefix + path;
      },
      mainScriptUrlOrBlob: join(outDir, 'tfjs-backend-wasm-threaded-simd.js'),
    });
  } finally {
    os.cpus = realCpus;
    // Emscripten adds process handlers that only rethrow; Node then reports the rethrow's
    // location, one 300 kB line of minified emscripten code, instead of the real error.
    for (const l of process.listeners('uncaughtException'))
      if (!listenersBefore.uncaught.includes(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection'))
      if (!listenersBefore.unhandled.includes(l)) process.removeListener('unhandledRejection', l);
  }
  // The same bridge tfjs's own loader attaches (backend_wasm.ts, init()).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmPackage.setThreadsCount(wanted);
  const backend = new wasmPackage.BackendWasm(module as never);
  // The pool's threads wait for work for ever and emscripten keeps their workers ref'd, which
  // would keep Node alive after the last line of a script. The main thread never needs its
  // event loop to hear from them (it waits on atomics), so let Node exit regardless.
  for (const worker of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) worker.unref();
  return backend;
}
