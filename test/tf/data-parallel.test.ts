/**
 * Data-parallel replicas in train() (stages/tf/data-parallel.ts) on the wasm backend, with the
 * tiny model: the shard rule, byte-identical reruns for a fixed worker count, equality with one
 * replica where batch normalization does not train (the head), per-shard Dropout masks, a
 * replica's failure as one line, and no replica keeping Node alive. The replicas run the
 * compiled worker script: `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../stages/tf/backend.js';
import { shardSizes } from '../../stages/tf/data-parallel.js';
import { Rng } from '../../stages/data/random.js';
import { loadModel } from '../../stages/tf/models.js';
import { snapshotWeights, train, type Batch, type TrainOptions } from '../../stages/tf/train-loop.js';

const SIZE = 16;
const CLASSES = 3;

/** n noisy images (podium's own PRNG), label = i mod CLASSES, brighter in the label's channel. */
function images(n: number, seed: number): Batch {
  const rng = new Rng(seed);
  const pixels = SIZE * SIZE * 3;
  const y = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
  const x = Float32Array.from(
    { length: n * pixels },
    (_, k) => 0.6 * rng.next() + (k % 3 === y[Math.floor(k / pixels)] ? 0.3 : 0),
  );
  return { x, y, n };
}

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    epochs: 2,
    batchSize: 7,
    lr: 0.05,
    lrSteps: [],
    momentum: 0.9,
    weightDecay: 1e-3,
    optimizer: 'sgd',
    labelSmoothing: 0.1,
    trainable: 'all',
    seed: 3,
    numTrain: 17, // batches of 7, 7, 3: the last one smaller, shards of unequal sizes
    batchSource: (epoch, b) => {
      const full = images(7, 100 * epoch + b + 1);
      return b === 2 ? { ...full, n: 3 } : full;
    },
    ...overrides,
  };
}

const tiny = (headDropout = 0): Promise<tfl.LayersModel> =>
  loadModel({ model: 'tiny', inputSize: SIZE, numClasses: CLASSES, seed: 1, ...(headDropout ? { headDropout } : {}) });

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

beforeAll(async () => {
  expect((await selectBackend('wasm', 1)).name).toBe('wasm');
});

describe('shardSizes', () => {
  it('cuts a batch into W contiguous shards whose sizes differ by at most one, larger first', () => {
    expect(shardSizes(32, 2)).toEqual([16, 16]);
    expect(shardSizes(7, 2)).toEqual([4, 3]);
    expect(shardSizes(7, 3)).toEqual([3, 2, 2]);
    expect(shardSizes(2, 3)).toEqual([1, 1, 0]);
    for (let n = 1; n <= 40; n++)
      for (let w = 1; w <= 8; w++) {
        const s = shardSizes(n, w);
        expect(s.reduce((a, b) => a + b, 0)).toBe(n);
        expect(Math.max(...s) - Math.min(...s)).toBeLessThanOrEqual(1);
      }
  });
});

describe('train with workers', () => {
  it('is byte-identical to itself for a fixed worker count (all layers, Dropout, unequal shards)', async () => {
    const runs: Array<Map<string, Float32Array>> = [];
    for (let i = 0; i < 2; i++) {
      const model = await tiny(0.25);
      const before = tf.memory().numTensors;
      const { history, dataParallel } = await train(model, options({ workers: 2 }));
      expect(tf.memory().numTensors).toBe(before);
      expect(history).toHaveLength(2);
      expect(dataParallel?.exchange).toBeGreaterThan(0);
      runs.push(snapshotWeights(model));
      model.dispose();
    }
    const [a, b] = runs as [Map<string, Float32Array>, Map<string, Float32Array>];
    for (const [name, va] of a) expect(sameBits(va, b.get(name) as Float32Array), name).toBe(true);
    // Batch normalization sees each shard's statistics, so two replicas differ from one.
    const single = await tiny(0.25);
    await train(single, options());
    expect(sameBits(snapshotWeights(single).get('conv1/kernel')!, a.get('conv1/kernel')!)).toBe(false);
    single.dispose();
  });

  it('equals one replica within float rounding where BN does not train (head only), with shards of 4 and 3', async () => {
    // One step of plain SGD on a batch of 7: w₁ − w₀ = −lr·g, and g = (4/7)·g₀ + (3/7)·g₁ must
    // be the whole batch's mean gradient. A missing weight, a shard dropped or counted twice
    // moves the update by a good part of itself, far beyond the tolerance.
    const opts = options({ epochs: 1, numTrain: 7, momentum: 0, weightDecay: 0, labelSmoothing: 0, trainable: 'head' });
    const start = snapshotWeights(await tiny());
    const result = async (workers: number): Promise<Map<string, Float32Array>> => {
      const model = await tiny();
      await train(model, { ...opts, workers });
      const w = snapshotWeights(model);
      model.dispose();
      return w;
    };
    const one = await result(1);
    for (const workers of [2, 3]) {
      const many = await result(workers);
      for (const name of ['head_logits/kernel', 'head_logits/bias']) {
        const w0 = start.get(name) as Float32Array;
        const update = maxDiff(one.get(name) as Float32Array, w0);
        expect(update, name).toBeGreaterThan(1e-3);
        expect(
          maxDiff(many.get(name) as Float32Array, one.get(name) as Float32Array),
          `${name}, ${workers} workers`,
        ).toBeLessThan(update * 1e-4);
      }
    }
  });

  it('runs batches smaller than the worker count (replicas without a shard sit the step out)', async () => {
    const pair = images(2, 5);
    const opts = options({
      epochs: 1,
      batchSize: 2,
      numTrain: 2,
      momentum: 0,
      trainable: 'head',
      batchSource: () => pair,
    });
    const a = await tiny();
    const b = await tiny();
    await train(a, opts);
    await train(b, { ...opts, workers: 3 });
    const [wa, wb] = [snapshotWeights(a), snapshotWeights(b)];
    expect(maxDiff(wa.get('head_logits/kernel')!, wb.get('head_logits/kernel')!)).toBeLessThan(1e-6);
    a.dispose();
    b.dispose();
  });

  it('draws other Dropout masks in each shard', async () => {
    // A batch of two identical halves: with one mask for both shards, the replica's gradient
    // would equal the main thread's and the update would equal one replica's on the half batch.
    const half = images(4, 9);
    const pixels = SIZE * SIZE * 3;
    const x = new Float32Array(8 * pixels);
    x.set(half.x, 0);
    x.set(half.x, 4 * pixels);
    const y = Int32Array.from([...half.y, ...half.y]);
    const base = { epochs: 1, momentum: 0, weightDecay: 0, labelSmoothing: 0, trainable: 'head' as const };
    const doubled = await tiny(0.5);
    await train(
      doubled,
      options({ ...base, batchSize: 8, numTrain: 8, workers: 2, batchSource: () => ({ x, y, n: 8 }) }),
    );
    const halfOnly = await tiny(0.5);
    await train(halfOnly, options({ ...base, batchSize: 4, numTrain: 4, batchSource: () => half }));
    const kernel = (m: tfl.LayersModel): Float32Array => snapshotWeights(m).get('head_logits/kernel')!;
    expect(maxDiff(kernel(doubled), kernel(halfOnly))).toBeGreaterThan(1e-4);
    doubled.dispose();
    halfOnly.dispose();
  });

  it('fails with one line naming the replica when a replica cannot start (a layer class only this thread knows)', async () => {
    class Doubling extends tfl.layers.Layer {
      static className = 'PodiumTestDoubling';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.mul(Array.isArray(inputs) ? inputs[0]! : inputs, 2);
      }
    }
    tf.serialization.registerClass(Doubling);
    const input = tfl.input({ shape: [SIZE, SIZE, 3] });
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(new Doubling({}).apply(input)) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: CLASSES, name: 'head_logits' }).apply(pooled) as tfl.SymbolicTensor;
    const out = tfl.layers
      .activation({ activation: 'softmax', name: 'head_softmax' })
      .apply(logits) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const before = tf.memory().numTensors;
    const error = await train(model, options({ workers: 2 })).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      /^data-parallel replica 1 of 2 \(a worker thread\) failed: could not start: .*PodiumTestDoubling/,
    );
    expect(error?.message).not.toContain('\n');
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('replica lifetime', () => {
  // A child process, so that "Node exits" is what is observed: a replica left running would
  // keep it alive until the timeout kills it.
  const script = (fail: boolean): string => `
    const { selectBackend } = await import(${JSON.stringify(join(process.cwd(), 'dist/stages/tf/backend.js'))});
    const { loadModel } = await import(${JSON.stringify(join(process.cwd(), 'dist/stages/tf/models.js'))});
    const { train } = await import(${JSON.stringify(join(process.cwd(), 'dist/stages/tf/train-loop.js'))});
    await selectBackend('wasm', 1);
    const model = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 1 });
    const x = new Float32Array(4 * 16 * 16 * 3).fill(0.5);
    const y = Int32Array.from([0, 1, 2, 0]);
    try {
      await train(model, { epochs: 1, batchSize: 4, lr: 0.1, lrSteps: [], momentum: 0, weightDecay: 0,
        optimizer: 'sgd', labelSmoothing: 0, trainable: 'all', seed: 1, numTrain: 12, workers: 2,
        batchSource: (e, b) => { if (${fail} && b === 2) throw new Error('no batch'); return { x, y, n: 4 }; } });
      console.log('trained');
    } catch (e) { console.log('failed: ' + e.message); }
  `;
  for (const fail of [false, true]) {
    it(`ends with the run${fail ? ' that failed' : ''}: no replica keeps Node alive`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'podium-dp-'));
      const file = join(dir, 'run.mjs');
      writeFileSync(file, script(fail));
      try {
        const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 60_000 });
        expect(stdout.trim()).toBe(fail ? 'failed: no batch' : 'trained');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  }
});
