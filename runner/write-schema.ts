// `npm run schema`: writes schema/pipeline.schema.json from the registry, so editors complete
// and check every kind's params. A test fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stableStringify } from '../cache/canonical.js';
import { stageKinds } from '../stages/registry.js';
import { fullSchema } from './pipeline-schema.js';

// Compiled this file sits in dist/runner/, under vitest in runner/: find the package root either way.
const here = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_PATH = join(
  here,
  ...(here.split(/[\\/]/).at(-2) === 'dist' ? ['..', '..'] : ['..']),
  'schema',
  'pipeline.schema.json',
);

export function schemaText(): string {
  return `${stableStringify(fullSchema(stageKinds.values()))}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_PATH, schemaText());
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
}
