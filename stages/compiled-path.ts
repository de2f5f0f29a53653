// Where a build output lives. `npm run build` puts compiled modules, worker scripts and
// WebAssembly kernels under dist/, beside each other; under vitest the TypeScript modules run
// from source, where those outputs do not exist, so the path is mapped into dist/.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const sourceRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `file` (relative to the module at `moduleUrl`) in the compiled tree. */
export function compiledPath(moduleUrl: string, file: string): string {
  const here = fileURLToPath(moduleUrl);
  if (here.endsWith('.js')) return join(dirname(here), file);
  return join(sourceRoot, 'dist', relative(sourceRoot, dirname(here)), file);
}

/** Instantiates the compiled WebAssembly module `file` (beside the module at `moduleUrl`). */
export function instantiateWasm(
  moduleUrl: string,
  file: string,
  imports: WebAssembly.Imports = {},
): WebAssembly.Exports {
  const path = compiledPath(moduleUrl, file);
  let bytes: Buffer<ArrayBuffer>;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new Error(`WebAssembly kernel ${path} is missing (run npm run build)`);
  }
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports;
}
