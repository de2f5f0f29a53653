// A worker process: runs one stage for the runner and reports back over IPC. It opens the same
// LMDB cache to write blobs; the runner alone commits the record.
import { getOneMessage, sendMessage } from 'execa';
import { LmdbStore } from '../cache/lmdb-store.js';
import { InputError, StageError } from '../stages/contract.js';
import { stageKinds } from '../stages/registry.js';
import type { WorkerMessage, WorkerRequest } from './worker-client.js';

const send = (m: WorkerMessage): Promise<void> => sendMessage(m as never);

// A worker whose runner died (killed, crashed) has no one to report to: stop at once rather
// than keep a core busy. Finished epochs are already in the cache; the next run resumes.
process.on('disconnect', () => process.exit(1));

const req = (await getOneMessage()) as unknown as WorkerRequest;
const kind = stageKinds.get(req.kind);
const store = new LmdbStore(req.storePath);
const logTail: string[] = [];
try {
  if (!kind) throw new Error(`unknown stage kind ${req.kind}`);
  const controller = new AbortController();
  const result = await kind.run({
    stageId: req.stageId, key: req.key, resume: req.resume, projectDir: req.projectDir, seed: req.seed, slot: req.slot, gpu: req.gpu, threads: req.threads, inputs: req.inputs, store,
    signal: controller.signal,
    log: (line) => { logTail.push(line); void send({ type: 'log', line }); },
  }, req.params);
  await store.flush();
  await send({ type: 'result', result });
} catch (e) {
  const err = e as Error;
  const internal = !(e instanceof StageError);
  await send({ type: 'error', message: err.message, logTail: internal ? (err.stack ?? '').split('\n') : (e as StageError).logTail, internal, inputError: e instanceof InputError });
} finally {
  await store.close();
}
