// predictCrops over images lent one at a time from the real LMDB cache (splitImages, views valid
// only while lent) gives the very logits of the same images held in memory, while predictions
// await the backend between images.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import type { RawImage } from '../../stages/data/augment/index.js';
import { encodeDecoded } from '../../stages/data/decoded.js';
import { predictCrops, splitImages } from '../../stages/tf/predict.js';

let dir: string;
let store: LmdbStore;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'podium-predict-src-'));
  store = new LmdbStore(dir);
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An image whose every pixel differs from its neighbours and from the other images'. */
function image(width: number, height: number, salt: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + salt * 101 + ((i / 3) | 0) * 7) & 255;
  return { data, width, height };
}

/** A small real model: per-channel means and a cross term, so every crop's pixels count. */
const model = {
  predict: (x: tf.Tensor4D): tf.Tensor =>
    tf.tidy(() => {
      const means = tf.mean(x, [1, 2]) as tf.Tensor2D;
      const corner = tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 3]), [-1, 3]);
      return tf.concat([means, tf.mul(corner, means)], 1);
    }),
};

describe('predictCrops from the cache', () => {
  it('lends each image for its crops only, and predicts exactly what the in-memory images give', async () => {
    const images = [image(20, 16, 1), image(16, 24, 2), image(18, 18, 3), image(30, 16, 4), image(16, 16, 5)];
    const rows = await Promise.all(
      images.map(async (img, i) => ({
        id: `i${i}`,
        label: i % 2,
        blob: await store.putBlob(encodeDecoded(img)),
        width: img.width,
        height: img.height,
      })),
    );
    const plan = { size: 12, scales: [12, 16], nested: 10, full: true, batchSize: 7 };
    const lent = splitImages(store, rows);
    let lending = 0;
    const counted = {
      length: lent.length,
      read: <T>(i: number, fn: (img: RawImage) => T): T =>
        lent.read(i, (img) => {
          lending++;
          const r = fn(img);
          lending--;
          return r;
        }),
    };
    const fromCache = await predictCrops(
      tf,
      {
        predict: (x) => {
          expect(lending).toBe(0);
          return model.predict(x);
        },
      },
      counted,
      plan,
    );
    const inMemory = await predictCrops(tf, model, images, plan);
    expect(fromCache.crops).toBe(images.length * 21);
    expect(fromCache.perScale.map((a) => Array.from(a))).toEqual(inMemory.perScale.map((a) => Array.from(a)));
    expect(Array.from(fromCache.full!)).toEqual(Array.from(inMemory.full!));
    // Each image's crops differ from the next image's: the logits are not all one value.
    expect(new Set(Array.from(fromCache.full!)).size).toBeGreaterThan(images.length);
  });
});
