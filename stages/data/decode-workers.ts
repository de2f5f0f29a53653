// A pool of worker threads that run decodeImage (decode-image.ts) for the `decode` stage.
//
// Why threads: profiled on intel6 (150×150 JPEGs → short side 256) when sharp decoded
// everything, the stage's main thread was busy 99% of the time (a JS upscale and sharp's
// synchronous option marshalling) while sharp's own decoding ran on the libuv pool. Each worker
// now does its images start to finish — read, check, decode (libjpeg-turbo is synchronous), resize,
// hash the blob, queue it in the cache — and replies with the digest only. Each worker keeps two
// images in flight, so it has the next one while the main thread answers, and sharp's
// asynchronous decodes overlap the other image's work.
//
// Why the workers write the cache themselves: when they sent each blob (196 kB for a 256×256
// image) to the main thread to store, that thread spent a second per 3000 intel6 images
// collecting the transferred buffers, on a machine with two cores that the workers needed.
// lmdb-js shares one environment between the threads of a process; each thread's writes commit
// in its own batches, in order, so a blob's data still lands before the meta marking it present.
import { existsSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { sha256, type Digest } from '../../cache/canonical.js';
import { compiledPath } from '../compiled-path.js';
import { openStoreFrom, type OwnStageStore, type StageStore, type StoreOpener } from '../contract.js';
import type { DecodeImageParams } from '../decode.js';
import { BadImage, decodeImage } from './decode-image.js';

export interface DecodeTask {
  path: string;
  sha256: string;
}
/**
 * A decoded image: its blob's digest, size and decoder. The blob's bytes come back only when the
 * pool has no cache to write them to (the benchmark of decoding alone).
 */
export interface DecodedImage {
  digest: Digest;
  width: number;
  height: number;
  via: 'libjpeg-turbo' | 'sharp';
  blob?: Uint8Array;
}
type Reply =
  | { id: number; ok: true; image: DecodedImage }
  | { id: number; ok: false; bad: boolean; reason: string }
  | { flushed: true; error?: string };
type Request = (DecodeTask & { id: number }) | { flush: true };
interface WorkerSetup {
  params: DecodeImageParams;
  opener: StoreOpener | undefined;
}

const IN_FLIGHT = 2;

export interface PoolOptions {
  threads: number;
  /** The workers queue each blob here, durable when decodeAll resolves; without it the bytes come back. */
  store?: Pick<StageStore, 'opener'>;
  /** Images per worker at a time; 1 with one thread decodes strictly one image after another. */
  inFlight?: number;
}

/**
 * Decodes every task on worker threads; `onResult(i, …)` runs on the calling thread as each
 * finishes (any order). A BadImage becomes `onResult(i, undefined, reason)`; anything else
 * rejects.
 */
export async function decodeAll(
  tasks: DecodeTask[],
  params: DecodeImageParams,
  onResult: (i: number, image: DecodedImage | undefined, badReason?: string) => void,
  { threads, store, inFlight = IN_FLIGHT }: PoolOptions,
): Promise<void> {
  if (!tasks.length) return;
  const script = compiledPath(import.meta.url, 'decode-workers.js');
  if (!existsSync(script)) throw new Error(`decode worker script ${script} is missing (run npm run build)`);
  const setup: WorkerSetup = { params, opener: store?.opener };
  const workers = Array.from(
    { length: Math.max(1, Math.min(threads, Math.ceil(tasks.length / inFlight))) },
    () => new Worker(script, { workerData: setup }),
  );
  let next = 0;
  let done = 0;
  let flushed = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const send = (w: Worker, request: Request): void => w.postMessage(request);
      const feed = (w: Worker): void => {
        if (next < tasks.length) {
          const id = next++;
          send(w, { id, ...tasks[id]! });
        }
      };
      for (const w of workers) {
        w.on('message', (r: Reply) => {
          if ('flushed' in r) {
            if (r.error) reject(new Error(`storing decoded images: ${r.error}`));
            else if (++flushed === workers.length) resolve();
            return;
          }
          try {
            if (r.ok) onResult(r.id, r.image);
            else if (r.bad) onResult(r.id, undefined, r.reason);
            else throw new Error(`decoding ${tasks[r.id]!.path}: ${r.reason}`);
          } catch (err) {
            reject(err);
            return;
          }
          // Last image: every worker commits what it queued before the stage may name the blobs.
          if (++done === tasks.length) for (const each of workers) send(each, { flush: true });
          else feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (flushed < workers.length)
            reject(new Error(`a decode worker exited (code ${code}) before the stage finished`));
        });
        for (let k = 0; k < inFlight; k++) feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// The worker side: decode what the pool sends, store the blob (or transfer it back when there
// is no store), reply; on `flush`, wait until everything queued is committed.
if (!isMainThread && parentPort) {
  const port = parentPort;
  const { params, opener } = workerData as WorkerSetup;
  const reply = (r: Reply, transfer: ArrayBuffer[] = []): void => port.postMessage(r, transfer);
  // Each thread opens its own handle through the opener: the stage never names the store's
  // implementation, and a store handle is not something postMessage can carry.
  let cache: Promise<OwnStageStore> | undefined;
  const openCache = (): Promise<OwnStageStore> => (cache ??= openStoreFrom(opener!));
  port.on('message', (request: Request) => {
    if ('flush' in request) {
      (cache ?? Promise.resolve(undefined))
        .then((s) => s?.close())
        .then(
          () => reply({ flushed: true }),
          (err: unknown) => reply({ flushed: true, error: (err as Error).message }),
        );
      return;
    }
    decodeImage(request.path, request.sha256, params).then(
      async ({ blob, width, height, via }) => {
        const digest = sha256(blob);
        if (opener) {
          (await openCache()).queueBlob(blob, digest);
          reply({ id: request.id, ok: true, image: { digest, width, height, via } });
          return;
        }
        // Transfer the memory rather than copy it, unless the Buffer is a slice of a shared pool.
        const own = blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength ? blob : new Uint8Array(blob);
        reply({ id: request.id, ok: true, image: { blob: own, digest, width, height, via } }, [
          own.buffer as ArrayBuffer,
        ]);
      },
      (err: unknown) =>
        reply({ id: request.id, ok: false, bad: err instanceof BadImage, reason: (err as Error).message }),
    );
  });
}
