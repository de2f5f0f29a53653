// A worker process: runs one stage for the runner and reports back over IPC. It opens the same
// LMDB cache to write blobs; the runner alone commits the record.
//
// The runner starts it with execa (worker-client.ts); this side talks over Node's own IPC
// channel, which is what execa's non-strict sendMessage/getOneMessage wrap. Importing execa
// here cost ~0.26 s of start-up in every isolated stage (measured: `node -e "await
// import('execa')"` 0.39 s against 0.13 s for bare node on this 2-core machine).
import { once } from 'node:events';
import { CacheCorruption, CacheUnavailable } from '../cache/store.js';
import { InputError, openStoreFrom, StageError, type OwnStageStore } from '../stages/contract.js';
import { stageKinds } from '../stages/registry.js';
import type { WorkerMessage, WorkerRequest } from './worker-client.js';
import { throttledProgress } from './execute-stage.js';

/** Resolves once the message is handed to the channel, so the last one is not lost at exit. */
const send = (m: WorkerMessage): Promise<void> => new Promise((resolve, reject) => {
  process.send!(m, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
});

// A worker whose runner died (killed, crashed) has no one to report to: stop at once rather
// than keep a core busy. Finished epochs are already in the cache; the next run resumes.
process.on('disconnect', () => process.exit(1));

if (!process.send) throw new Error('runner/worker.js runs as a stage worker process, started by the runner with an IPC channel');
const [req] = (await once(process, 'message')) as [WorkerRequest];
const kind = stageKinds.get(req.kind);
const logTail: string[] = [];
let store: OwnStageStore | undefined;
try {
  if (!kind) throw new Error(`unknown stage kind ${req.kind}`);
  store = await openStoreFrom(req.opener);
  const controller = new AbortController();
  const result = await kind.run({
    stageId: req.stageId, key: req.key, resume: req.resume, projectDir: req.projectDir, seed: req.seed, slot: req.slot, gpu: req.gpu, threads: req.threads, inputs: req.inputs, store,
    signal: controller.signal,
    log: (line) => { logTail.push(line); void send({ type: 'log', line }); },
    // The runner throttles too; this keeps the IPC channel quiet when a stage reports every step.
    // One message: the runner's note() also puts the line in the stage's log.
    note: (line) => { logTail.push(line); void send({ type: 'note', line }); },
    progress: throttledProgress((update) => void send({ type: 'progress', update })),
  }, req.params);
  await store.flush();
  await send({ type: 'result', result });
} catch (e) {
  const err = e as Error;
  const internal = !(e instanceof StageError);
  await send({
    type: 'error', message: err.message, logTail: internal ? (err.stack ?? '').split('\n') : (e as StageError).logTail, internal, inputError: e instanceof InputError,
    ...(e instanceof CacheCorruption ? { corruptDigest: e.digest } : {}), ...(e instanceof CacheUnavailable ? { cacheUnavailable: true } : {}),
  });
} finally {
  await store?.close();
}
