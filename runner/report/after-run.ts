// The report after `podium run` (issue 13: "also written after every run, its path printed"), for
// the run verb to call once the lock file is written. A report that cannot be written is a line
// on stderr, never a failed run: the results are in the cache whatever happens here.
import { relative } from 'node:path';
import type { ReportOptions } from './index.js';

export async function reportAfterRun(
  file: string,
  opts: ReportOptions,
  write: (line: string) => void,
): Promise<string | undefined> {
  try {
    const { report } = await import('./index.js');
    const r = await report(file, opts);
    write(`report: ${relative(process.cwd(), r.path) || r.path}`);
    return r.path;
  } catch (e) {
    write(`report not written: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}
