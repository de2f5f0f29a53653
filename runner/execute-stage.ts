// Running one stage: in this process, or in a worker process for kinds that load heavy native
// modules (a crash or leak there cannot take the runner down). Either way the result is a
// StageRecord that the caller commits; nothing here writes a record.
import type { Digest } from '../cache/canonical.js';
import { stageStoreOf } from '../cache/local-stage-store.js';
import { CacheCorruption, CacheUnavailable, type StageRecord, type Store } from '../cache/store.js';
import { InputError, StageError, type InputValue, type Progress, type StageKind, type StageResult } from '../stages/contract.js';

const LOG_TAIL = 50;

export interface StageJob {
  /** False under verify: the stage must not reuse saved progress. */
  resume: boolean;
  kind: StageKind<any>;
  stageId: string;
  key: Digest;
  params: Record<string, unknown>;
  inputs: Record<string, InputValue>;
  seed: number;
  projectDir: string;
  slot: number;
  gpu: string | undefined;
  /** CPU threads the stage may use (StageContext.threads). */
  threads: number;
}

export class StageFailure extends Error {
  /** inputError: the stage found its input data invalid (the run exits 2). */
  constructor(message: string, readonly logTail: string[], readonly inputError = false) { super(message); }
}

/** What a running stage tells the runner besides its result. */
export interface StageListener {
  log(line: string): void;
  note(line: string): void;
  progress(update: Progress): void;
}

/** Runs the stage and returns the record to commit, or throws StageFailure. */
export async function executeStage(job: StageJob, store: Store, signal: AbortSignal, listener: StageListener): Promise<StageRecord> {
  const tail: string[] = [];
  const log = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL) tail.shift();
    listener.log(line);
  };
  const note = (line: string): void => { log(line); listener.note(line); };
  const progress = throttledProgress(listener.progress);
  const startedAt = new Date();
  let result: StageResult;
  try {
    result = job.kind.isolate
      ? await (await import('./worker-client.js')).runInWorker(job, stageStoreOf(store).opener, signal, { log, note, progress })
      : await job.kind.run({ stageId: job.stageId, key: job.key, resume: job.resume, projectDir: job.projectDir, seed: job.seed, slot: job.slot, gpu: job.gpu, threads: job.threads, inputs: job.inputs, store: stageStoreOf(store), signal, log, note, progress }, job.params);
  } catch (e) {
    // The executor acts on these: a corrupt input is repaired, an unwritable cache ends the run.
    if (e instanceof CacheCorruption || e instanceof CacheUnavailable) throw e;
    if (e instanceof StageError || e instanceof StageFailure) throw new StageFailure(e.message, [...tail, ...(e instanceof StageError ? e.logTail : [])].slice(-LOG_TAIL), e instanceof InputError || (e instanceof StageFailure && e.inputError));
    // Not a failure the stage anticipated: keep the stack for whoever debugs it.
    const err = e as Error;
    throw new StageFailure(`internal error: ${err.message}`, [...tail, ...(err.stack ?? '').split('\n')].slice(-LOG_TAIL));
  }
  await store.flush();
  return {
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
  };
}

/** At most one progress update per interval goes on (the last one of a burst is kept and sent later), plus every completion. */
export function throttledProgress(send: (p: Progress) => void, intervalMs = 100): (p: Progress) => void {
  let last = 0;
  let pending: Progress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (pending) { last = Date.now(); send(pending); pending = undefined; }
  };
  return (p) => {
    pending = p;
    if (p.done >= p.total || Date.now() - last >= intervalMs) { if (timer) clearTimeout(timer); flush(); }
    else timer ??= setTimeout(flush, intervalMs - (Date.now() - last));
  };
}
