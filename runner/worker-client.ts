// The runner's side of a worker process: start `node worker.js` with execa and an IPC channel,
// send the job, relay log lines, and turn a crash (SIGKILL, out of memory) into a stage failure.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaNode } from 'execa';
import { CacheCorruption, CacheUnavailable } from '../cache/store.js';
import type { Progress, StageResult, StoreOpener } from '../stages/contract.js';
import { stageFailure, type StageFailure } from './stage-failure.js';
import type { StageJob, StageListener } from './stage-job.js';

export type WorkerRequest = Omit<StageJob, 'kind'> & { kind: string; opener: StoreOpener };
export type WorkerMessage =
  | { type: 'log'; line: string }
  | { type: 'note'; line: string }
  | { type: 'progress'; update: Progress }
  | { type: 'result'; result: StageResult }
  | { type: 'failure'; failure: StageFailure }
  /** The cache's own faults, rethrown here as the executor expects them (repair, or end the run). */
  | { type: 'cache-corrupt'; digest: string; message: string }
  | { type: 'cache-unavailable'; message: string };

function workerScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const compiled = join(here, 'worker.js');
  // Under vitest this module runs from source; the worker always runs compiled.
  return existsSync(compiled) ? compiled : join(here, '..', 'dist', 'runner', 'worker.js');
}

export async function runInWorker(
  job: StageJob,
  opener: StoreOpener,
  signal: AbortSignal,
  listener: StageListener,
): Promise<{ ok: true; result: StageResult } | { ok: false; failure: StageFailure }> {
  const { log } = listener;
  const env = job.gpu !== undefined ? { CUDA_VISIBLE_DEVICES: job.gpu } : {};
  const child = execaNode(workerScript(), [], {
    ipc: true,
    serialization: 'advanced',
    reject: false,
    stdout: 'pipe',
    stderr: 'pipe',
    cancelSignal: signal,
    env,
    cwd: job.projectDir,
  });
  const request: WorkerRequest = { ...job, kind: job.kind.name, opener };
  await child.sendMessage(request as never);
  let outcome: WorkerMessage | undefined;
  for await (const message of child.getEachMessage()) {
    const m = message as unknown as WorkerMessage;
    if (m.type === 'log') log(m.line);
    else if (m.type === 'note') listener.note(m.line);
    else if (m.type === 'progress') listener.progress(m.update);
    else {
      outcome = m;
      break;
    }
  }
  const done = await child;
  for (const line of `${done.stderr ?? ''}`.split('\n').filter(Boolean)) log(line);
  switch (outcome?.type) {
    case 'result':
      return { ok: true, result: outcome.result };
    case 'failure':
      return { ok: false, failure: outcome.failure };
    case 'cache-corrupt':
      throw new CacheCorruption(outcome.digest, outcome.message);
    case 'cache-unavailable':
      throw new CacheUnavailable(outcome.message);
  }
  if (done.isCanceled) return { ok: false, failure: stageFailure('interrupted', 'interrupted') };
  const how = done.signal ? `was killed by ${done.signal}` : `exited with code ${done.exitCode}`;
  return { ok: false, failure: stageFailure('stage', `worker process ${how} before the stage finished`) };
}
