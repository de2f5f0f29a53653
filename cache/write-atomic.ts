// Writing a user-visible file (an export, a restored command output, the report, a pipeline's
// lock) so that a reader never sees half of it: write beside it, then rename over it. Shared by
// the cache, the stages and the runner, so it lives in the lowest of them.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes `content` to `abs` through `<abs>.podium-tmp-<pid>` (the name the chaos suite looks for
 * when it checks that nothing half-written is left), creating the folder if needed.
 */
export function writeFileAtomic(abs: string, content: string | Uint8Array): void {
  mkdirSync(dirname(abs), { recursive: true });
  const tmp = `${abs}.podium-tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, abs);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
