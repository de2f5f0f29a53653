// A pool of worker threads that run decodeImage (decode-image.ts) for the `decode` stage.
//
// Why threads: profiled on intel6 (150×150 JPEGs → short side 256) when sharp decoded
// everything, the stage's main thread was busy 99% of the time (a JS upscale and sharp's
// synchronous option marshalling) while sharp's own decoding ran on the libuv pool. Each worker
// now does its images start to finish — read, check, decode (libjpeg-turbo is synchronous), resize,
// hash the blob — and the main thread only stores the blobs. Each worker keeps two images in
// flight, so it has the next one while the main thread answers, and sharp's asynchronous decodes
// overlap the other image's work.
import { existsSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { sha256, type Digest } from '../../cache/canonical.js';
import { compiledPath } from '../compiled-path.js';
import { BadImage, decodeImage, type DecodeImageParams } from './decode-image.js';

export interface DecodeTask { path: string; sha256: string }
/** A decoded image: its blob, the blob's digest (hashed here, off the storing thread), size and decoder. */
export interface DecodedImage { blob: Uint8Array; digest: Digest; width: number; height: number; via: 'libjpeg-turbo' | 'sharp' }
type Reply = { id: number; ok: true; image: DecodedImage } | { id: number; ok: false; bad: boolean; reason: string };

const IN_FLIGHT = 2;

/**
 * Decodes every task on `threads` worker threads; `onResult(i, …)` runs on the calling thread as
 * each finishes (any order). A BadImage becomes `onResult(i, undefined, reason)`; anything else
 * rejects.
 */
export async function decodeAll(
  tasks: DecodeTask[], params: DecodeImageParams, threads: number,
  onResult: (i: number, image: DecodedImage | undefined, badReason?: string) => void,
): Promise<void> {
  if (!tasks.length) return;
  const script = compiledPath(import.meta.url, 'decode-workers.js');
  if (!existsSync(script)) throw new Error(`decode worker script ${script} is missing (run npm run build)`);
  const workers = Array.from({ length: Math.max(1, Math.min(threads, Math.ceil(tasks.length / IN_FLIGHT))) }, () => new Worker(script, { workerData: params }));
  let next = 0;
  let done = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const feed = (w: Worker): void => {
        if (next < tasks.length) { const id = next++; w.postMessage({ id, ...tasks[id]! }); }
      };
      for (const w of workers) {
        w.on('message', (r: Reply) => {
          try {
            if (r.ok) onResult(r.id, r.image);
            else if (r.bad) onResult(r.id, undefined, r.reason);
            else throw new Error(`decoding ${tasks[r.id]!.path}: ${r.reason}`);
          } catch (err) { reject(err); return; }
          if (++done === tasks.length) resolve();
          else feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => { if (done < tasks.length) reject(new Error(`a decode worker exited (code ${code}) before the stage finished`)); });
        for (let k = 0; k < IN_FLIGHT; k++) feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// The worker side: decode what the pool sends, reply with the blob (its memory transferred).
if (!isMainThread && parentPort) {
  const port = parentPort;
  const params = workerData as DecodeImageParams;
  port.on('message', (task: DecodeTask & { id: number }) => {
    decodeImage(task.path, task.sha256, params).then(
      ({ blob, width, height, via }) => {
        // Transfer the memory rather than copy it, unless the Buffer is a slice of a shared pool.
        const own = blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength ? blob : new Uint8Array(blob);
        const image: DecodedImage = { blob: own, digest: sha256(own), width, height, via };
        port.postMessage({ id: task.id, ok: true, image } satisfies Reply, [own.buffer as ArrayBuffer]);
      },
      (err: unknown) => port.postMessage({ id: task.id, ok: false, bad: err instanceof BadImage, reason: (err as Error).message } satisfies Reply),
    );
  });
}
