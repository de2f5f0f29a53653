// The build step after tsc (`npm run build`, also run by `npm install` via prepare):
// precompiled validators, the build id the no-op check reads, an executable CLI (tsc does
// not keep the exec bit, and `npx podium` runs the bin file directly), and the WebAssembly
// kernels compiled from AssemblyScript.
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

import { computeBuildId } from './build-id.js';
import { writeGenerated } from './validators.js';

const here = dirname(fileURLToPath(import.meta.url));
process.stdout.write(`wrote ${writeGenerated()}\n`);
writeFileSync(join(here, 'build-id.txt'), `${computeBuildId()}\n`);
chmodSync(join(here, 'cli.js'), 0o755);

/** AssemblyScript → WebAssembly. --runtime stub: no garbage collector; the kernels only touch memory the caller laid out. */
async function compileKernel(source: string, out: string, flags: string[] = []): Promise<void> {
  const { error, stderr } = await asc.main([
    source,
    '-O3',
    '--runtime',
    'stub',
    '--noAssert',
    '--enable',
    'simd',
    ...flags,
    '--outFile',
    out,
  ]);
  if (error) throw new Error(`compiling ${source}: ${error.message}\n${stderr.toString()}`);
  process.stdout.write(`wrote ${out}\n`);
}

const src = join(here, '..', '..');
// The decode stage's resize loops, with a memory of their own.
await compileKernel(
  join(src, 'stages', 'data', 'kernels', 'image.as.ts'),
  join(here, '..', 'stages', 'data', 'kernels', 'image.wasm'),
);
// Training loops on the tfjs wasm backend's own heap (imported): one build for the threaded
// backend, whose memory is shared (declared with the 4 GiB maximum it has), one for the
// single-threaded fallback.
/** Flags of a kernel built for the threaded backend's shared heap (its 4 GiB maximum declared). */
const SHARED_HEAP = [
  '--enable',
  'threads',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '1',
  '--maximumMemory',
  '65536',
];
const train = join(src, 'stages', 'tf', 'kernels', 'train.as.ts');
const trainOut = join(here, '..', 'stages', 'tf', 'kernels');
await compileKernel(train, join(trainOut, 'train-shared.wasm'), SHARED_HEAP);
await compileKernel(train, join(trainOut, 'train.wasm'), ['--importMemory']);
// The jobs of stages/tf/kernels/pool.ts's threads (the Conv2D filter gradient, batch norm and
// ReLU6 passes), on the same heap, also instantiated by each worker thread.
const poolJobs = join(src, 'stages', 'tf', 'kernels', 'pool-jobs.as.ts');
await compileKernel(poolJobs, join(trainOut, 'pool-jobs-shared.wasm'), SHARED_HEAP);
await compileKernel(poolJobs, join(trainOut, 'pool-jobs.wasm'), ['--importMemory']);
