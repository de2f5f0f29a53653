// The package's programmatic API: `import { run, status, loadPipeline } from 'podium-pipeline'`.
// A small, stable surface over the verb modules, which return data and never print: the CLI
// formats what these return. Errors: UsageError (invalid pipeline or options: its diagnostics
// carry file, line, column and JSON pointer); a failed stage is a report with status 'failed'
// and its failure (reason input, stage, internal or interrupted).
import type { EventSink } from './events.js';
import { runPipeline, type RunOptions, type RunSummary } from './run.js';
import { status as statusOf, type StatusReport } from './status.js';
import { verify as verifyPipeline, type VerifyReport } from './verify.js';
import type { CommonOptions } from './context.js';

export { loadPipeline } from './context.js';
export { formatStatus, type StatusEntry, type StatusReport } from './status.js';
export { diff, formatDiff, type DiffReport, type StageDiff } from './diff.js';
export { show, formatShow, type ShowReport } from './show.js';
export { metrics, formatMetrics, type MetricsReport } from './metrics.js';
export { dag, formatDag, type Dag, type DagFormat, type DagStage } from './dag.js';
export { formatVerify, type VerifyReport, type VerifyStage } from './verify.js';
export { analyze, type Pipeline, type StageNode } from './analyze.js';
export { UsageError, formatDiagnostic, type Diagnostic, type Result } from './diagnostics.js';
export { humanLogger, type EventSink, type RunEvent, type StageReport, type StageStatus } from './events.js';
export type { FailureReason, StageFailure } from './stage-failure.js';
export type { CommonOptions, RunOptions, RunSummary };

export interface ApiRunOptions extends RunOptions {
  /** Receives stage starts, log lines, results and warnings; default: nothing is printed. */
  onEvent?: EventSink;
  /** Aborting stops running stages; finished stages stay cached. */
  signal?: AbortSignal;
}

/** `podium run`: runs the pipeline (cached stages are skipped) and writes its lock file. */
export function run(file: string, opts: ApiRunOptions = {}): Promise<RunSummary> {
  const { onEvent = () => {}, signal = new AbortController().signal, ...rest } = opts;
  return runPipeline(file, rest, onEvent, signal);
}

/** `podium status`: each stage fresh or stale against the cache and lock file, with the reasons. */
export function status(file: string, opts: CommonOptions = {}): Promise<StatusReport> {
  return statusOf(file, opts);
}

/** `podium verify`: re-executes stages and compares their outputs with the lock file. */
export function verify(
  file: string,
  opts: CommonOptions & { stages?: string[]; signal?: AbortSignal } = {},
): Promise<VerifyReport> {
  const { signal = new AbortController().signal, ...rest } = opts;
  return verifyPipeline(file, rest, signal);
}
