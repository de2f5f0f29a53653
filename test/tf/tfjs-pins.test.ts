/**
 * stages/tf/wasm-threads.ts reaches into @tensorflow/tfjs-backend-wasm 4.22.0's internals: the
 * file names under wasm-out/, the pthread worker script exported as `wasmWorkerContents`, the
 * emscripten factory's config fields and the one `os.cpus()` read that sizes its thread pool.
 * None of that is public API, so package.json pins the tfjs packages exactly and this test fails
 * loudly when what is installed is not what that module was written for.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

/** The tfjs release stages/tf/wasm-threads.ts was written against and tested with. */
const WRITTEN_FOR = '4.22.0';
const TFJS_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-layers',
];

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
}

describe('tfjs version pins', () => {
  it('package.json pins every tfjs package to exactly the release wasm-threads.ts was written for', () => {
    const deps = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies;
    for (const name of TFJS_PACKAGES) expect(deps[name], `${name} in package.json`).toBe(WRITTEN_FOR);
  });

  it('the installed tfjs packages are that release, with the threaded build files wasm-threads.ts loads', () => {
    for (const name of TFJS_PACKAGES) {
      const v = installedVersion(name);
      expect(
        v,
        `${name} ${v} is installed, but stages/tf/wasm-threads.ts patches ${WRITTEN_FOR}'s internals: re-check it against the new release before moving the pin`,
      ).toBe(WRITTEN_FOR);
    }
    const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
    for (const file of [
      'tfjs-backend-wasm-threaded-simd.js',
      'tfjs-backend-wasm-threaded-simd.wasm',
      'tfjs-backend-wasm-threaded-simd.worker.js',
    ]) {
      expect(existsSync(join(wasmOut, file)), `${file} in ${wasmOut}`).toBe(true);
    }
  });

  it('the threaded build still has each internal wasm-threads.ts relies on', () => {
    const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
    const worker = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
      wasmWorkerContents?: unknown;
    };
    expect(typeof worker.wasmWorkerContents, 'the pthread worker script exported as text (wasmWorkerContents)').toBe(
      'string',
    );
    const factory = readFileSync(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js'), 'utf8');
    // The pool is sized from this one read while the module initialises; wasm-threads.ts doubles
    // what os.cpus() reports for exactly that moment. A second read, or none, breaks the trick.
    expect(
      factory.split('require("os").cpus().length').length - 1,
      'reads of require("os").cpus().length in the factory',
    ).toBe(1);
    for (const internal of [
      'mainScriptUrlOrBlob',
      'PThread',
      '_init_with_threads_count',
      '_get_threads_count',
      '_register_tensor',
      '_dispose_data',
    ]) {
      expect(factory.includes(internal), `${internal} in the threaded factory`).toBe(true);
    }
  });
});
