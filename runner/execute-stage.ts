// Running one stage: in this process, or in a worker process for kinds that load heavy native
// modules (a crash or leak there cannot take the runner down). Either way the outcome is a
// StageRecord that the caller commits, or a StageFailure; nothing here writes a record.
import type { Digest } from '../cache/canonical.js';
import { stageStoreOf } from '../cache/local-stage-store.js';
import { CacheCorruption, CacheUnavailable, type StageRecord, type Store } from '../cache/store.js';
import type { StageResult, StageStore } from '../stages/contract.js';
import type { Pipeline, StageNode } from './analyze.js';
import { inputValues } from './fingerprints.js';
import { failureOf, LOG_TAIL, withLog, type StageFailure } from './stage-failure.js';
import { contextFor, throttledProgress, type StageJob, type StageListener } from './stage-job.js';

export type StageOutcome = { ok: true; record: StageRecord } | { ok: false; failure: StageFailure };

/**
 * Runs a stage and returns its outcome, the record uncommitted: executeStage here, or a cluster
 * job (runner/slurm), which also needs `inputBlobs`: every blob the inputs are or refer to.
 */
export type StageRunner = (
  job: StageJob,
  store: Store,
  signal: AbortSignal,
  listener: StageListener,
  inputBlobs: Digest[],
) => Promise<StageOutcome>;

/** Where and how a job runs: the executor's slot, GPU and thread share; verify's one slot. */
export interface Placement {
  resume: boolean;
  slot: number;
  gpu: string | undefined;
  threads: number;
}

/** The job for `node` under `key`, its inputs read from the upstream records `upstream` gives. */
export function jobFor(
  pipeline: Pipeline,
  node: StageNode,
  key: Digest,
  upstream: (id: string) => StageRecord | undefined,
  placement: Placement,
): StageJob {
  return {
    kind: node.kind,
    stageId: node.id,
    key,
    params: node.params,
    inputs: inputValues(node, upstream),
    seed: pipeline.seed,
    projectDir: pipeline.projectDir,
    ...placement,
  };
}

/**
 * Runs the stage and returns the record to commit, or why it failed. Throws only the cache's own
 * faults, which the executor acts on: a corrupt input is repaired, an unwritable cache ends the run.
 */
export async function executeStage(
  job: StageJob,
  store: Store | StageStore,
  signal: AbortSignal,
  listener: StageListener,
): Promise<StageOutcome> {
  // A cluster job passes the StageStore it built over the shared store (runner/slurm); the runner its Store.
  const stageStore = 'opener' in store ? store : stageStoreOf(store);
  const tail: string[] = [];
  const log = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL) tail.shift();
    listener.log(line);
  };
  const note = (line: string): void => {
    log(line);
    listener.note(line);
  };
  const progress = throttledProgress(listener.progress);
  const startedAt = new Date();
  let result: StageResult;
  try {
    if (job.kind.isolate) {
      const ran = await (await import('./worker-client.js')).runInWorker(job, stageStore.opener, signal, {
        log,
        note,
        progress,
      });
      if (!ran.ok) return { ok: false, failure: withLog(ran.failure, tail) };
      result = ran.result;
    } else {
      result = await job.kind.run(contextFor(job, stageStore, signal, { log, note, progress }), job.params);
    }
  } catch (e) {
    if (e instanceof CacheCorruption || e instanceof CacheUnavailable) throw e;
    return { ok: false, failure: withLog(failureOf(e), tail) };
  }
  await store.flush();
  return {
    ok: true,
    record: {
      key: job.key,
      kind: job.kind.name,
      version: job.kind.version,
      stageId: job.stageId,
      outputs: result.outputs,
      refs: result.refs ?? [],
      metrics: result.metrics ?? {},
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      backend: result.backend ?? null,
      logTail: tail,
      ...(result.timing ? { timing: result.timing } : {}),
    },
  };
}
