// One stage to run, as plain data (it crosses to a worker process as it is), and the one place a
// StageContext is built from it: in this process (execute-stage.ts) or in a worker (worker.ts).
// Light on purpose: a worker imports it before anything else.
import type { Digest } from '../cache/canonical.js';
import type { InputValue, Progress, StageContext, StageKind, StageStore } from '../stages/contract.js';

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

/** What a running stage tells the runner besides its result. */
export interface StageListener {
  log(line: string): void;
  note(line: string): void;
  progress(update: Progress): void;
}

/** What a stage's run() gets: the job's fields, the store, the signal and where its lines go. */
export function contextFor(
  job: Omit<StageJob, 'kind'>,
  store: StageStore,
  signal: AbortSignal,
  listener: StageListener,
): StageContext {
  const { stageId, key, resume, projectDir, seed, slot, gpu, threads, inputs } = job;
  const { log, note, progress } = listener;
  return { stageId, key, resume, projectDir, seed, slot, gpu, threads, inputs, store, signal, log, note, progress };
}

/** At most one progress update per interval goes on (the last one of a burst is kept and sent later), plus every completion. */
export function throttledProgress(send: (p: Progress) => void, intervalMs = 100): (p: Progress) => void {
  let last = 0;
  let pending: Progress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (pending) {
      last = Date.now();
      send(pending);
      pending = undefined;
    }
  };
  return (p) => {
    pending = p;
    if (p.done >= p.total || Date.now() - last >= intervalMs) {
      if (timer) clearTimeout(timer);
      flush();
    } else timer ??= setTimeout(flush, intervalMs - (Date.now() - last));
  };
}
