// A worker process: runs one stage for the runner and reports back over IPC. It opens the same
// LMDB cache to write blobs; the runner alone commits the record.
//
// The runner starts it with execa (worker-client.ts); this side talks over Node's own IPC
// channel, which is what execa's non-strict sendMessage/getOneMessage wrap. Importing execa
// here cost ~0.26 s of start-up in every isolated stage (measured: `node -e "await
// import('execa')"` 0.39 s against 0.13 s for bare node on this 2-core machine).
import { once } from 'node:events';
import { CacheCorruption, CacheUnavailable } from '../cache/store.js';
import { openStoreFrom, type OwnStageStore } from '../stages/contract.js';
import { stageKinds } from '../stages/registry.js';
import { failureOf } from './stage-failure.js';
import { contextFor, throttledProgress } from './stage-job.js';
import type { WorkerMessage, WorkerRequest } from './worker-client.js';

/** Resolves once the message is handed to the channel, so the last one is not lost at exit. */
const send = (m: WorkerMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    process.send!(m, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
  });

// A worker whose runner died (killed, crashed) has no one to report to: stop at once rather
// than keep a core busy. Finished epochs are already in the cache; the next run resumes.
process.on('disconnect', () => process.exit(1));

if (!process.send)
  throw new Error('runner/worker.js runs as a stage worker process, started by the runner with an IPC channel');
const [req] = (await once(process, 'message')) as [WorkerRequest];
const kind = stageKinds.get(req.kind);
let store: OwnStageStore | undefined;
try {
  if (!kind) throw new Error(`unknown stage kind ${req.kind}`);
  store = await openStoreFrom(req.opener);
  // The runner keeps the log tail (every line comes over the channel) and stops a worker by
  // killing it (execa's cancelSignal), never by asking: the stage's signal here never fires.
  const result = await kind.run(
    contextFor(req, store, AbortSignal.any([]), {
      log: (line) => void send({ type: 'log', line }),
      // One message: the runner's note() also puts the line in the stage's log.
      note: (line) => void send({ type: 'note', line }),
      // The runner throttles too; this keeps the IPC channel quiet when a stage reports every step.
      progress: throttledProgress((update) => void send({ type: 'progress', update })),
    }),
    req.params,
  );
  await store.flush();
  await send({ type: 'result', result });
} catch (e) {
  if (e instanceof CacheCorruption) await send({ type: 'cache-corrupt', digest: e.digest, message: e.message });
  else if (e instanceof CacheUnavailable) await send({ type: 'cache-unavailable', message: e.message });
  else await send({ type: 'failure', failure: failureOf(e) });
} finally {
  await store?.close();
}
