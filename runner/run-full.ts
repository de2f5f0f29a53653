// The full path of `podium run`: analyse, plan, execute, write the lock file, remember the
// run for gc and the no-op memo for the next run.
import { availableParallelism } from 'node:os';
import type { LockFile, LockStage } from '../cache/lockfile.js';
import { writeLock } from '../cache/lockfile.js';
import { cacheDir, leaseTimeoutMs, lockOf, loadPipeline, openRegistered, openStore } from './context.js';
import { takeCacheWarnings } from './cache-warnings.js';
import { forgetNoop, saveNoop } from './noop-memo.js';
import { UsageError } from './diagnostics.js';
import type { EventSink } from './events.js';
import { execute, type Outcome } from './executor.js';
import { plan } from './plan.js';
import type { Pipeline } from './analyze.js';
import { keyOptions, type RunOptions, type RunSummary } from './run-options.js';

export async function runFull(
  file: string | undefined,
  opts: RunOptions,
  plain: boolean,
  onEvent: EventSink,
  signal: AbortSignal,
): Promise<RunSummary> {
  const pipeline = loadPipeline(file, opts);
  const thePlan = plan(pipeline, opts);
  if (opts.jobs !== undefined && (!Number.isInteger(opts.jobs) || opts.jobs < 1))
    throw new UsageError(`--jobs must be a positive integer, got ${opts.jobs}`);
  const cluster =
    opts.executor === 'slurm' && !opts.dryRun
      ? await (await import('./slurm/setup.js')).slurmSetup(pipeline, opts, onEvent)
      : undefined;
  const jobs = cluster?.maxJobs ?? opts.jobs ?? (opts.gpus?.length || availableParallelism());
  const { path: lockPath, lock } = lockOf(pipeline);
  const runId = `${new Date().toISOString()}-${process.pid}`;
  // Strict: in-process stages and restores read through it, and a missing blob is a miss to repair.
  // Registered for its whole length, so gc cannot sweep what this run committed or will read.
  const store = opts.dryRun
    ? openStore(opts, pipeline.projectDir, 'read', { strictReads: true })
    : await openRegistered(opts, pipeline.projectDir, runId, `podium run ${pipeline.file}`, onEvent, signal);
  if (!store) return { pipeline: pipeline.name, stages: [], lockWritten: false, noop: false };
  try {
    const outcome = await execute(pipeline, thePlan, store, {
      jobs,
      gpus: opts.gpus,
      dryRun: !!opts.dryRun,
      lock,
      onEvent,
      signal,
      leaseTimeoutMs: leaseTimeoutMs(opts),
      ...(cluster ? { runStage: cluster.backend.runStage } : {}),
    });
    if (cluster && signal.aborted) await cluster.backend.afterInterrupt();
    // As events, for the log and for API callers; taken, so the CLI does not print them again.
    for (const w of takeCacheWarnings()) onEvent({ type: 'warning', message: w });
    let lockWritten = false;
    const ok = outcome.reports.every((r) => r.status === 'ran' || r.status === 'cached');
    if (!opts.dryRun && ok) {
      // A no-op run leaves the file (and its mtime) alone. A key determines its entry (the
      // fingerprint hashes to it, the record stored under it holds outputs and metrics), so
      // comparing keys is enough and much cheaper than serialising the whole lock.
      if (!lock || lockIsOutdated(pipeline, lock, outcome)) {
        writeLock(lockPath, mergeLock(pipeline, lock, outcome));
        lockWritten = true;
      }
    }
    // Runs are remembered so gc keeps recent results; a run that executed nothing adds nothing.
    if (!opts.dryRun && outcome.reports.some((r) => r.status === 'ran')) {
      store.addRun({
        id: runId,
        pipeline: pipeline.file,
        at: new Date().toISOString(),
        keys: [...outcome.done.values()].map((d) => d.record.key),
      });
    }
    if (plain) {
      if (ok) await saveNoop(cacheDir(opts, pipeline.projectDir), pipeline, outcome, lockPath, keyOptions(opts));
      else forgetNoop(cacheDir(opts, pipeline.projectDir), pipeline.file);
    }
    return { pipeline: pipeline.name, stages: outcome.reports, lockWritten, noop: false };
  } finally {
    try {
      store.endRun(runId);
    } catch {
      /* a dead run's registration is ignored by gc anyway */
    }
    await store.close();
  }
}

function lockIsOutdated(pipeline: Pipeline, lock: LockFile, outcome: Outcome): boolean {
  if (lock.pipeline !== pipeline.name || lock.seed !== pipeline.seed) return true;
  if (Object.keys(lock.stages).some((id) => !pipeline.byId.has(id))) return true;
  for (const [id, d] of outcome.done) if (lock.stages[id]?.key !== d.record.key) return true;
  return false;
}

/** Stages this run produced replace their entries; stages it did not visit keep theirs. */
function mergeLock(pipeline: Pipeline, old: LockFile | undefined, outcome: Outcome): LockFile {
  const stages: Record<string, LockStage> = {};
  for (const node of pipeline.stages) {
    const d = outcome.done.get(node.id);
    if (d)
      stages[node.id] = { ...d.fingerprint, key: d.record.key, outputs: d.record.outputs, metrics: d.record.metrics };
    else if (old?.stages[node.id]) stages[node.id] = old.stages[node.id]!;
  }
  return { pipeline: pipeline.name, seed: pipeline.seed, stages };
}
