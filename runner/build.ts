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

// The decode stage's resize loops (stages/data/kernels/image.as.ts → dist/…/image.wasm).
// --runtime stub: no garbage collector, the kernels only touch memory the caller laid out.
const kernelSource = join(here, '..', '..', 'stages', 'data', 'kernels', 'image.as.ts');
const kernelOut = join(here, '..', 'stages', 'data', 'kernels', 'image.wasm');
const { error, stderr } = await asc.main([kernelSource, '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--outFile', kernelOut]);
if (error) throw new Error(`compiling ${kernelSource}: ${error.message}\n${stderr.toString()}`);
process.stdout.write(`wrote ${kernelOut}\n`);
