// Worker threads and processes load compiled JavaScript only, while under vitest the modules of
// cache/ run from their TypeScript sources: a module that names itself to a worker (a StageStore's
// opener) names its twin under dist/ then.
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The URL a worker should load for the module at `moduleUrl`, a file directly under cache/. */
export function compiledUrl(moduleUrl: string): string {
  const here = fileURLToPath(moduleUrl);
  if (here.endsWith('.js')) return moduleUrl;
  const root = join(dirname(here), '..');
  const compiled = join(root, 'dist', relative(root, dirname(here)), basename(here).replace(/\.ts$/, '.js'));
  return pathToFileURL(existsSync(compiled) ? compiled : here).href;
}
