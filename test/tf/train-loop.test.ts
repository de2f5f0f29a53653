/**
 * stages/tf/train-loop.ts on the wasm backend with the tiny model and small synthetic tensors:
 * it learns, it is bit-reproducible, resuming equals not stopping, the lr schedule and label
 * smoothing do what they say, and nothing leaks. Plus one step of the real MobileNetV2.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../stages/tf/backend.js';
import { RELU6_GRAD, setWasmTrainOp, SGD_MOMENTUM } from '../../stages/tf/wasm-train-ops.js';
import { HEAD_PREFIX, loadModel } from '../../stages/tf/models.js';
import {
  learningRateAt,
  restoreWeights,
  smoothedCrossEntropy,
  snapshotWeights,
  train,
  type Batch,
  type EpochMetrics,
  type TrainOptions,
} from '../../stages/tf/train-loop.js';
import { decodeOptimizer, encodeOptimizer, type OptimizerState } from '../../stages/tf/optimizer.js';

const SIZE = 16;
const CLASSES = 3;
const SAMPLES = 48;
const BATCH = 8;

/** Deterministic values in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * A learnable toy problem: noisy 16×16 images whose class is the colour channel that is brighter
 * on average, over a textured background.
 */
function toyData(): { x: Float32Array; y: Int32Array } {
  const r = rng(5);
  const pixels = SIZE * SIZE * 3;
  const x = new Float32Array(SAMPLES * pixels);
  const y = new Int32Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const label = (i * 7) % CLASSES;
    y[i] = label;
    for (let p = 0; p < SIZE * SIZE; p++) {
      for (let c = 0; c < 3; c++) x[i * pixels + p * 3 + c] = 0.6 * r() + (c === label ? 0.3 : 0);
    }
  }
  return { x, y };
}

const data = toyData();

/** Batch b of an epoch, in an order shuffled per epoch (a pure function of its arguments). */
function batchSource(epoch: number, b: number): Batch {
  const order = Array.from({ length: SAMPLES }, (_, i) => i);
  const r = rng(1000 + epoch);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const pixels = SIZE * SIZE * 3;
  const n = Math.min(BATCH, SAMPLES - b * BATCH);
  const x = new Float32Array(n * pixels);
  const y = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const idx = order[b * BATCH + k] as number;
    x.set(data.x.subarray(idx * pixels, (idx + 1) * pixels), k * pixels);
    y[k] = data.y[idx] as number;
  }
  return { x, y, n };
}

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    epochs: 4,
    batchSize: BATCH,
    lr: 0.05,
    lrSteps: [2],
    lrFactor: 0.1,
    momentum: 0.9,
    weightDecay: 1e-3,
    optimizer: 'sgd',
    labelSmoothing: 0.1,
    trainable: 'all',
    seed: 3,
    numTrain: SAMPLES,
    batchSource,
    ...overrides,
  };
}

const tiny = (): Promise<tfl.LayersModel> =>
  loadModel({ model: 'tiny', inputSize: SIZE, numClasses: CLASSES, seed: 1, headDropout: 0.25 });

/** Bit-exact equality of two weight snapshots. */
function expectSameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, va] of a) {
    const vb = b.get(name) as Float32Array;
    expect(
      Buffer.from(vb.buffer, vb.byteOffset, vb.byteLength).equals(Buffer.from(va.buffer, va.byteOffset, va.byteLength)),
      name,
    ).toBe(true);
  }
}

beforeAll(async () => {
  expect((await selectBackend('wasm')).name).toBe('wasm');
});

describe('pieces', () => {
  it('steps the learning rate at each lrSteps epoch (MXNet fine-tune.py)', () => {
    const lrs = [0, 1, 2, 3, 4, 5].map((e) => learningRateAt(e, 0.01, [2, 4], 0.1));
    expect(lrs[0]).toBe(0.01);
    expect(lrs[1]).toBe(0.01);
    expect(lrs[2]).toBeCloseTo(0.001, 12);
    expect(lrs[3]).toBeCloseTo(0.001, 12);
    expect(lrs[4]).toBeCloseTo(0.0001, 12);
    expect(lrs[5]).toBeCloseTo(0.0001, 12);
    expect(learningRateAt(30, 0.1, [])).toBe(0.1);
    expect(learningRateAt(20, 0.01, [20])).toBeCloseTo(0.001, 12); // default factor 0.1
  });

  it('label smoothing mixes the cross-entropy with the uniform one: (1−ε)·CE + ε·mean_k(−log p_k)', () => {
    const logits = [
      [2, 0.5, -1],
      [0, 0, 3],
    ];
    const labels = [0, 1];
    const logSoftmax = (row: number[]): number[] => {
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      return row.map((v) => v - lse);
    };
    const expected = (eps: number): number =>
      logits.reduce((sum, row, i) => {
        const lp = logSoftmax(row);
        const ce = -(lp[labels[i] as number] as number);
        const uniform = -lp.reduce((s, v) => s + v, 0) / lp.length;
        return sum + (1 - eps) * ce + eps * uniform;
      }, 0) / logits.length;
    for (const eps of [0, 0.1, 0.3]) {
      const got = tf.tidy(
        () => smoothedCrossEntropy(tf.tensor2d(logits), tf.tensor1d(labels, 'int32'), eps).dataSync()[0],
      );
      expect(got).toBeCloseTo(expected(eps), 5);
    }
    // Confident and right: smoothing raises the loss; confident and wrong: it lowers it.
    const loss = (l: number[][], y: number[], eps: number): number =>
      tf.tidy(() => smoothedCrossEntropy(tf.tensor2d(l), tf.tensor1d(y, 'int32'), eps).dataSync()[0] as number);
    expect(loss([[8, 0, 0]], [0], 0.1)).toBeGreaterThan(loss([[8, 0, 0]], [0], 0));
    expect(loss([[8, 0, 0]], [1], 0.1)).toBeLessThan(loss([[8, 0, 0]], [1], 0));
  });
});

describe('train', () => {
  it('learns the toy problem: loss falls, accuracy far above chance', async () => {
    const model = await tiny();
    const { history } = await train(model, options({ epochs: 6, lr: 0.1, lrSteps: [5], labelSmoothing: 0 }));
    const first = history[0] as EpochMetrics;
    const last = history[history.length - 1] as EpochMetrics;
    expect(history).toHaveLength(6);
    expect(last.loss).toBeLessThan(first.loss * 0.5);
    expect(last.acc).toBeGreaterThanOrEqual(0.9); // chance: 1/3
    expect(history.map((h) => h.lr)).toEqual([0.1, 0.1, 0.1, 0.1, 0.1, learningRateAt(5, 0.1, [5])]);
    expect(last.imagesPerSecond).toBeGreaterThan(0);
    // Also in inference mode (moving BN statistics), on the training images.
    const probs = tf.tidy(() =>
      tf.argMax(model.predict(tf.tensor4d(data.x, [SAMPLES, SIZE, SIZE, 3])) as tf.Tensor, 1).dataSync(),
    );
    const correct = Array.from(probs).filter((p, i) => p === data.y[i]).length;
    expect(correct / SAMPLES).toBeGreaterThanOrEqual(0.9);
    model.dispose();
  });

  it('is bit-reproducible: two runs with one seed give identical weights', async () => {
    const a = await tiny();
    const b = await tiny();
    await train(a, options());
    await train(b, options());
    expectSameBits(snapshotWeights(a), snapshotWeights(b));
    // A different training seed draws other dropout masks.
    const c = await tiny();
    await train(c, options({ seed: 4 }));
    expect(snapshotWeights(c).get(`${HEAD_PREFIX}logits/kernel`)).not.toEqual(
      snapshotWeights(a).get(`${HEAD_PREFIX}logits/kernel`),
    );
    for (const m of [a, b, c]) m.dispose();
  });

  it("podium's fused wasm training ops give bit for bit the weights of the tfjs ops they replace", async () => {
    // selectBackend registered them, so SGD with momentum and ReLU6's gradient on wasm take them.
    expect(tf.getBackend()).toBe('wasm');
    for (const op of [SGD_MOMENTUM, RELU6_GRAD]) expect(tf.getKernel(op, 'wasm')).toBeDefined();
    const fused = await tiny();
    await train(fused, options({ epochs: 2 }));
    for (const op of [SGD_MOMENTUM, RELU6_GRAD]) setWasmTrainOp(op, false);
    try {
      const ops = await tiny();
      await train(ops, options({ epochs: 2 }));
      expectSameBits(snapshotWeights(fused), snapshotWeights(ops));
      ops.dispose();
    } finally {
      for (const op of [SGD_MOMENTUM, RELU6_GRAD]) setWasmTrainOp(op, true);
    }
    fused.dispose();
  });

  for (const optimizer of ['sgd', 'adam'] as const) {
    it(`resumes (${optimizer}): stopping after epoch k and restarting from its weights and optimizer state equals an uninterrupted run`, async () => {
      const overrides: Partial<TrainOptions> = optimizer === 'adam' ? { optimizer, lr: 0.01 } : {};
      const straight = await tiny();
      const stateAt: OptimizerState[] = [];
      const full = await train(
        straight,
        options({
          ...overrides,
          onEpochEnd: async (_e, _m, _model, ctx) => void stateAt.push(await ctx.getOptimizerState()),
        }),
      );

      const first = await tiny();
      const part = await train(first, options({ ...overrides, epochs: 2 }));
      expect(part.optimizerState).toEqual(stateAt[1]);
      const saved = snapshotWeights(first);
      first.dispose();

      // A fresh process would rebuild the model from its spec, then restore the checkpoint.
      const resumed = await loadModel({
        model: 'tiny',
        inputSize: SIZE,
        numClasses: CLASSES,
        seed: 99,
        headDropout: 0.25,
      });
      restoreWeights(resumed, saved);
      // Through the blob finetune checkpoints the state in, as a resumed stage reads it back.
      const reread = decodeOptimizer(encodeOptimizer(part.optimizerState));
      expect(reread).toEqual(part.optimizerState);
      const rest = await train(resumed, options({ ...overrides, startEpoch: 2, optimizerState: reread }));
      expectSameBits(snapshotWeights(straight), snapshotWeights(resumed));
      expect(rest.history.map((h) => [h.loss, h.acc, h.lr])).toEqual(
        full.history.slice(2).map((h) => [h.loss, h.acc, h.lr]),
      );
      expect(rest.optimizerState).toEqual(full.optimizerState);
      straight.dispose();
      resumed.dispose();
    });
  }

  it('refuses to resume a momentum run without its optimizer state, and checks the state', async () => {
    const model = await tiny();
    await expect(train(model, options({ startEpoch: 2 }))).rejects.toThrow(/needs optimizerState/);
    const { optimizerState } = await train(model, options({ epochs: 1 }));
    await expect(train(model, options({ startEpoch: 1, optimizer: 'adam', optimizerState }))).rejects.toThrow(
      /is for 'sgd'/,
    );
    await expect(train(model, options({ startEpoch: 1, trainable: 'head', optimizerState }))).rejects.toThrow(
      /does not train/,
    );
    model.dispose();
  });

  it('rejects bad batches with the batch named', async () => {
    const model = await tiny();
    const bad = (epoch: number, b: number): Batch => ({
      ...batchSource(epoch, b),
      y: new Int32Array(BATCH).fill(CLASSES),
    });
    await expect(train(model, options({ batchSource: bad }))).rejects.toThrow(
      /batchSource\(0, 0\): label 3 outside \[0, 3\)/,
    );
    model.dispose();
  });

  it("trains only the head with trainable 'head', and only the later layers with { from }", async () => {
    const model = await tiny();
    const before = snapshotWeights(model);
    await train(model, options({ epochs: 1, trainable: 'head' }));
    const afterHead = snapshotWeights(model);
    for (const [name, v] of before) {
      // Frozen layers are frozen entirely: weights and BatchNorm moving statistics.
      if (name.startsWith(HEAD_PREFIX)) expect(afterHead.get(name), name).not.toEqual(v);
      else expect(afterHead.get(name), name).toEqual(v);
    }
    await train(model, options({ epochs: 1, trainable: { from: 'pw' } }));
    const afterFrom = snapshotWeights(model);
    for (const name of [
      'conv1/kernel',
      'conv1_bn/gamma',
      'conv1_bn/moving_mean',
      'dw/depthwise_kernel',
      'dw_bn/moving_variance',
    ]) {
      expect(afterFrom.get(name), name).toEqual(afterHead.get(name));
    }
    for (const name of ['pw/kernel', 'pw_bn/gamma', 'pw_bn/moving_mean', `${HEAD_PREFIX}logits/bias`]) {
      expect(afterFrom.get(name), name).not.toEqual(afterHead.get(name));
    }
    await expect(train(model, options({ trainable: { from: 'nope' } }))).rejects.toThrow(/no layer named 'nope'/);
    model.dispose();
  });

  it('leaks no tensors: the count is the same before and after, and constant from epoch to epoch', async () => {
    const model = await tiny();
    // Warm up once: tfjs creates a few lasting tensors on first use of some ops.
    await train(model, options({ epochs: 1 }));
    const before = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds(); // wasm buffers, shared ones counted once
    const perEpoch: Array<[number, number]> = [];
    await train(
      model,
      options({
        optimizer: 'adam',
        onEpochEnd: () => void perEpoch.push([tf.memory().numTensors, tf.engine().backend.numDataIds()]),
      }),
    );
    expect(new Set(perEpoch.map(([t]) => t)).size).toBe(1);
    expect(new Set(perEpoch.map(([, b]) => b)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    model.dispose();
  });
});

describe('the nsfwjs MobileNetV2', () => {
  it('gets a new head and trains a step at 96 px', async () => {
    const model = await loadModel({ model: 'mobilenet_v2', inputSize: 96, numClasses: 6, seed: 0 });
    const r = rng(77);
    const n = 4;
    const x = Float32Array.from({ length: n * 96 * 96 * 3 }, () => r());
    const y = Int32Array.from({ length: n }, (_, i) => i % 6);
    const before = snapshotWeights(model);
    const tensors = tf.memory().numTensors;
    const { history } = await train(
      model,
      options({ epochs: 1, batchSize: n, numTrain: n, lr: 0.01, batchSource: () => ({ x, y, n }) }),
    );
    expect(Number.isFinite(history[0]?.loss)).toBe(true);
    const after = snapshotWeights(model);
    for (const name of [
      'Conv1/kernel',
      'block_16_project/kernel',
      'bn_Conv1/moving_mean',
      `${HEAD_PREFIX}logits/kernel`,
    ]) {
      expect(after.get(name), name).not.toEqual(before.get(name));
    }
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});
