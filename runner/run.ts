// `podium run`. A plain run first asks the no-op memo whether anything changed since the last
// complete run; only when something did is the full path (analysis, executor) even loaded.
import { cacheDir, pipelinePath, projectOfPipeline } from './cache-path.js';
import type { EventSink } from './events.js';
import { lockPathOf } from './lock-path.js';
import { checkNoop } from './noop-memo.js';
import { keyOptions, type RunOptions, type RunSummary } from './run-options.js';

export type { RunOptions, RunSummary } from './run-options.js';

export async function runPipeline(
  file: string | undefined,
  opts: RunOptions,
  onEvent: EventSink,
  signal: AbortSignal,
): Promise<RunSummary> {
  const plain = !opts.dryRun && !opts.only?.length && !opts.from && !opts.force?.length;
  if (plain && file) {
    const path = pipelinePath(file);
    const noop = await checkNoop(cacheDir(opts, projectOfPipeline(path)), path, lockPathOf(path), keyOptions(opts));
    if (noop) return { pipeline: noop.name, stages: noop.reports, lockWritten: false, noop: true };
  }
  const { runFull } = await import('./run-full.js');
  return runFull(file, opts, plain, onEvent, signal);
}
