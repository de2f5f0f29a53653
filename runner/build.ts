// The build step after tsc (`npm run build`, also run by `npm install` via prepare):
// precompiled validators, the build id the no-op check reads, and an executable CLI (tsc does
// not keep the exec bit, and `npx podium` runs the bin file directly).
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeBuildId } from './build-id.js';
import { writeGenerated } from './validators.js';

const here = dirname(fileURLToPath(import.meta.url));
process.stdout.write(`wrote ${writeGenerated()}\n`);
writeFileSync(join(here, 'build-id.txt'), `${computeBuildId()}\n`);
chmodSync(join(here, 'cli.js'), 0o755);
