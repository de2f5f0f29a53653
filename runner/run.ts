// `podium run`: plan, execute, write the lock file, remember the run for gc.
import { availableParallelism } from 'node:os';
import { canonicalJson } from '../cache/canonical.js';
import type { LockFile, LockStage } from '../cache/lockfile.js';
import { writeLock } from '../cache/lockfile.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import type { EventSink, StageReport } from './events.js';
import { execute, type Outcome } from './executor.js';
import { plan } from './plan.js';
import type { Pipeline } from './analyze.js';

export interface RunOptions extends CommonOptions {
  dryRun?: boolean;
  only?: string[];
  from?: string;
  force?: string[];
  jobs?: number;
  gpus?: string[];
}

export interface RunSummary { pipeline: string; stages: StageReport[]; lockWritten: boolean }

export async function runPipeline(file: string | undefined, opts: RunOptions, onEvent: EventSink, signal: AbortSignal): Promise<RunSummary> {
  const pipeline = loadPipeline(file);
  const thePlan = plan(pipeline, opts);
  if (opts.jobs !== undefined && (!Number.isInteger(opts.jobs) || opts.jobs < 1)) throw new UsageError(`--jobs must be a positive integer, got ${opts.jobs}`);
  const jobs = opts.jobs ?? (opts.gpus?.length || availableParallelism());
  const { path: lockPath, lock } = lockOf(pipeline);
  const store = openStore(opts);
  try {
    const outcome = await execute(pipeline, thePlan, store, { jobs, gpus: opts.gpus, dryRun: !!opts.dryRun, lock, onEvent, signal });
    for (const w of store.warnings) onEvent({ type: 'warning', message: w });
    let lockWritten = false;
    const ok = outcome.reports.every((r) => r.status === 'ran' || r.status === 'cached');
    if (!opts.dryRun && ok) {
      const next = mergeLock(pipeline, lock, outcome);
      // A no-op run leaves the file (and its mtime) alone.
      if (!lock || canonicalJson(lock) !== canonicalJson(next)) { writeLock(lockPath, next); lockWritten = true; }
    }
    if (!opts.dryRun && outcome.done.size) {
      store.addRun({ id: `${new Date().toISOString()}-${process.pid}`, pipeline: pipeline.file, at: new Date().toISOString(), keys: [...outcome.done.values()].map((d) => d.record.key) });
    }
    return { pipeline: pipeline.name, stages: outcome.reports, lockWritten };
  } finally {
    await store.close();
  }
}

/** Stages this run produced replace their entries; stages it did not visit keep theirs. */
function mergeLock(pipeline: Pipeline, old: LockFile | undefined, outcome: Outcome): LockFile {
  const stages: Record<string, LockStage> = {};
  for (const node of pipeline.stages) {
    const d = outcome.done.get(node.id);
    if (d) stages[node.id] = { ...d.fingerprint, key: d.record.key, outputs: d.record.outputs, metrics: d.record.metrics };
    else if (old?.stages[node.id]) stages[node.id] = old.stages[node.id]!;
  }
  return { pipeline: pipeline.name, seed: pipeline.seed, stages };
}
