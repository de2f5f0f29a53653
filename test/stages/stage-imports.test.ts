// Stages see the cache only through StageStore (stages/contract.ts): no file under stages/ may
// load the store's implementation or the runner. Types are fine (they vanish when compiled), and
// so are pure utilities such as cache/canonical.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FORBIDDEN = [/^cache\/lmdb-store\.(ts|js)$/, /^cache\/store\.(ts|js)$/, /^runner\//];

/** Every import of a forbidden module in `source` (a file at `file`, relative to the root) that is not type-only. */
export function forbiddenImports(file: string, source: string): string[] {
  const found: string[] = [];
  const check = (spec: string, typeOnly: boolean, what: string): void => {
    if (!spec.startsWith('.')) return;
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec))
      .split(sep)
      .join('/');
    if (!typeOnly && FORBIDDEN.some((f) => f.test(target))) found.push(`${file}: ${what} '${spec}'`);
  };
  // import … from '…', export … from '…' (over several lines), and bare import '…'.
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+['"]([^'"]+)['"]/gm))
    check(m[3]!, !!m[2], m[1]!);
  for (const m of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) check(m[1]!, false, 'import');
  // import('…'), awaited or not: always a load at run time.
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) check(m[1]!, false, 'import()');
  return found;
}

function stageFiles(dir = join(ROOT, 'stages')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return stageFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.as.ts') ? [relative(ROOT, p).split(sep).join('/')] : [];
  });
}

describe('stage imports', () => {
  it('no stage loads cache/lmdb-store.ts, cache/store.ts or anything in runner/ (types excepted)', () => {
    const files = stageFiles();
    expect(files.length).toBeGreaterThan(20);
    expect(files.flatMap((f) => forbiddenImports(f, readFileSync(join(ROOT, f), 'utf8')))).toEqual([]);
  });

  it('the check catches every way of importing, and lets types and pure utilities through', () => {
    const source = [
      "import { LmdbStore } from '../cache/lmdb-store.js';",
      "import type { Store } from '../cache/store.js';",
      "import {\n  CacheCorruption,\n} from '../cache/store.js';",
      "export { openStore } from '../runner/context.js';",
      "import type { Diagnostic } from '../runner/diagnostics.js';",
      "import { sha256 } from '../cache/canonical.js';",
      "import '../runner/cli.js';",
      "const m = await import('../cache/lmdb-store.js');",
      "import { x } from './data/artifacts.js';",
    ].join('\n');
    expect(forbiddenImports('stages/example.ts', source)).toEqual([
      "stages/example.ts: import '../cache/lmdb-store.js'",
      "stages/example.ts: import '../cache/store.js'",
      "stages/example.ts: export '../runner/context.js'",
      "stages/example.ts: import '../runner/cli.js'",
      "stages/example.ts: import() '../cache/lmdb-store.js'",
    ]);
    expect(
      forbiddenImports('stages/data/deep.ts', "import { LmdbStore } from '../../cache/lmdb-store.js';"),
    ).toHaveLength(1);
  });
});
