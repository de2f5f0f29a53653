/**
 * stages/tf/backend.ts and stages/tf/models.ts on the wasm backend: backend selection, the
 * offline nsfwjs MobileNetV2 with a new head, the tiny CNN, model.json round trips with cutAt,
 * and the fast layers (models.ts accelerateLayers) against tfjs-layers' own implementations.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../stages/tf/backend.js';
import { accelerateLayers, fileSystemHandler, HEAD_LOGITS, HEAD_PREFIX, loadModel } from '../../stages/tf/models.js';

/** Deterministic values in [lo, hi) (mulberry32). */
function seeded(size: number, seed: number, lo = 0, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 2 ** 32);
  }
  return out;
}

function weightsByName(model: tfl.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
}

/** max |a − b| / max |a|. */
function relError(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((expected[i] ?? 0) - (actual[i] ?? 0)));
    scale = Math.max(scale, Math.abs(expected[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-12);
}

const tmp = mkdtempSync(join(tmpdir(), 'podium-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(async () => {
  const { name } = await selectBackend('wasm');
  expect(name).toBe('wasm');
});

describe('selectBackend', () => {
  it("'tensorflow' fails clearly when neither tfjs-node package is installed, leaving the backend alone", async () => {
    await expect(selectBackend('tensorflow')).rejects.toThrow(
      /@tensorflow\/tfjs-node-gpu: not installed.*install @tensorflow\/tfjs-node-gpu where libtensorflow can be downloaded/is,
    );
    expect(tf.getBackend()).toBe('wasm');
  });

  it("'auto' falls through the missing node packages to wasm, with our gradient kernels", async () => {
    const selected = await selectBackend('auto');
    expect(selected.name).toBe('wasm');
    expect(selected.tf).toBe(tf); // one tfjs-core instance
    expect(selected.detail).toMatch(/^wasm/);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('is deterministic: the same computation twice gives the same bits', () => {
    const run = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(seeded(2 * 9 * 9 * 3, 1), [2, 9, 9, 3]);
        const f = tf.tensor4d(seeded(3 * 3 * 3 * 4, 2, -1, 1), [3, 3, 3, 4]);
        return tf
          .grad((a: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, f, 2, 'same'))))(x)
          .dataSync() as Float32Array;
      });
    expect(run()).toEqual(run());
  });
});

describe('mobilenet_v2 (nsfwjs, offline)', () => {
  let model: tfl.LayersModel;
  beforeAll(async () => {
    model = await loadModel({ model: 'mobilenet_v2', inputSize: 96, numClasses: 6, seed: 7 });
  });
  afterAll(() => model.dispose());

  it('is rebuilt at 96 px, cut at out_relu, with a 6-class softmax head', () => {
    expect(model.inputs[0]?.shape).toEqual([null, 96, 96, 3]);
    expect(model.layers.map((l) => l.name).slice(-4)).toEqual([
      'out_relu',
      `${HEAD_PREFIX}pool`,
      HEAD_LOGITS,
      `${HEAD_PREFIX}softmax`,
    ]);
    expect(model.layers.every((l) => l.trainable)).toBe(true);
    const probs = tf.tidy(() => model.predict(tf.tensor4d(seeded(3 * 96 * 96 * 3, 3), [3, 96, 96, 3])) as tf.Tensor);
    expect(probs.shape).toEqual([3, 6]);
    const rows = tf.tidy(() => tf.sum(probs, 1).dataSync());
    probs.dispose();
    for (const s of rows) expect(s).toBeCloseTo(1, 5);
  });

  it("has exactly the nsfwjs model's backbone weights, by name", async () => {
    // nsfwjs's own loader (its JSONHandler + tf.loadLayersModel) is the reference.
    const nsfwjs = await import('nsfwjs');
    const reference = await nsfwjs.load('MobileNetV2');
    const refModel = reference.model as unknown as tfl.LayersModel;
    const expected = weightsByName(refModel);
    const ours = weightsByName(model);
    const backbone = [...ours.keys()].filter((n) => !n.startsWith(HEAD_PREFIX));
    expect(backbone.length).toBe(260); // 266 weights minus the 3 old Dense layers' kernels and biases
    for (const name of backbone) {
      const ref = expected.get(name);
      expect(ref, name).toBeDefined();
      expect(ours.get(name), name).toEqual(ref);
    }
    reference.dispose();
  });

  it('initialises the head deterministically from the seed', async () => {
    const again = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 6, seed: 7 });
    const other = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 6, seed: 8 });
    const k = `${HEAD_LOGITS}/kernel`;
    expect(weightsByName(again).get(k)).toEqual(weightsByName(model).get(k));
    expect(weightsByName(other).get(k)).not.toEqual(weightsByName(model).get(k));
    // Seed 0 too (tfjs's randomNormal takes 0 for "no seed" and draws from Math.random).
    const zero = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 6, seed: 0 });
    const zeroAgain = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 6, seed: 0 });
    expect(weightsByName(zeroAgain).get(k)).toEqual(weightsByName(zero).get(k));
    for (const m of [again, other, zero, zeroAgain]) m.dispose();
  });

  it("starts the head's kernel at the scale headInit names, the bias at zero", async () => {
    const spread = (kernel: Float32Array): { sd: number; maxAbs: number } => {
      const values = Array.from(kernel);
      const mean = values.reduce((s, v) => s + v, 0) / values.length;
      const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
      return { sd, maxAbs: Math.max(...values.map(Math.abs)) };
    };
    const small = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 6, seed: 7 });
    const glorot = await loadModel({
      model: 'mobilenet_v2',
      inputSize: 64,
      numClasses: 6,
      seed: 7,
      headInit: 'glorot-uniform',
    });
    const k = `${HEAD_LOGITS}/kernel`;
    // 1280 × 6 = 7680 draws: the sample sd is within a few percent of the true one.
    const n = spread(weightsByName(small).get(k)!);
    expect(n.sd).toBeGreaterThan(0.0095);
    expect(n.sd).toBeLessThan(0.0105);
    const limit = Math.sqrt(6 / (1280 + 6));
    const g = spread(weightsByName(glorot).get(k)!);
    expect(g.maxAbs).toBeLessThanOrEqual(limit);
    expect(g.sd).toBeGreaterThan(0.95 * (limit / Math.sqrt(3)));
    expect(g.sd).toBeLessThan(1.05 * (limit / Math.sqrt(3)));
    for (const m of [small, glorot])
      expect(
        weightsByName(m)
          .get(`${HEAD_LOGITS}/bias`)!
          .every((v) => v === 0),
      ).toBe(true);
    small.dispose();
    glorot.dispose();
  });
});

describe('the tiny model', () => {
  it('builds deterministically from its seed', async () => {
    const a = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 1, headDropout: 0.25 });
    const b = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 1, headDropout: 0.25 });
    const c = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 2, headDropout: 0.25 });
    expect(a.outputs[0]?.shape).toEqual([null, 3]);
    expect(a.layers.map((l) => l.getClassName())).toEqual(
      expect.arrayContaining([
        'Conv2D',
        'DepthwiseConv2D',
        'BatchNormalization',
        'ReLU',
        'GlobalAveragePooling2D',
        'Dropout',
        'Dense',
        'Activation',
      ]),
    );
    expect(weightsByName(b)).toEqual(weightsByName(a));
    expect(weightsByName(c).get('conv1/kernel')).not.toEqual(weightsByName(a).get('conv1/kernel'));
    for (const m of [a, b, c]) m.dispose();
  });

  it('rejects bad specs with clear errors', async () => {
    await expect(loadModel({ model: 'tiny', inputSize: 16, numClasses: 1, seed: 1 })).rejects.toThrow(/numClasses/);
    await expect(loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 1, cutAt: 'nope' })).rejects.toThrow(
      /no layer named 'nope'/,
    );
    await expect(loadModel({ model: join(tmp, 'missing'), inputSize: 16, numClasses: 3, seed: 1 })).rejects.toThrow(
      /cannot read model/,
    );
  });
});

describe('model.json on disk', () => {
  it('saves with the fs IOHandler and loads back as is, at another size, and cut with a new head', async () => {
    const original = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 5 });
    const dir = join(tmp, 'tiny');
    await original.save(fileSystemHandler(dir));
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
      weightsManifest: Array<{ paths: string[] }>;
    };
    expect(json.weightsManifest[0]?.paths).toEqual(['weights.bin']);

    const x = tf.tensor4d(seeded(2 * 16 * 16 * 3, 9), [2, 16, 16, 3]);
    // As is (a checkpoint): same predictions; from a file:// URL to model.json.
    const same = await loadModel({ model: `file://${join(dir, 'model.json')}`, inputSize: 16, numClasses: 3, seed: 0 });
    const [p1, p2] = tf.tidy(() => [
      (original.predict(x) as tf.Tensor).dataSync(),
      (same.predict(x) as tf.Tensor).dataSync(),
    ]);
    expect(relError(p1 as Float32Array, p2 as Float32Array)).toBeLessThan(1e-6);
    await expect(loadModel({ model: dir, inputSize: 16, numClasses: 4, seed: 0 })).rejects.toThrow(/give cutAt/);

    // Cut at the backbone's end, 5 new classes, 24 px: backbone weights kept, head new.
    const cut = await loadModel({ model: dir, cutAt: 'out_relu', inputSize: 24, numClasses: 5, seed: 11 });
    expect(cut.inputs[0]?.shape).toEqual([null, 24, 24, 3]);
    expect(cut.outputs[0]?.shape).toEqual([null, 5]);
    const before = weightsByName(original);
    const after = weightsByName(cut);
    for (const [name, values] of after) {
      if (name.startsWith(HEAD_PREFIX)) continue;
      expect(values, name).toEqual(before.get(name));
    }
    expect(after.get(`${HEAD_LOGITS}/kernel`)?.length).toBe(16 * 5);
    tf.dispose(x);
    for (const m of [original, same, cut]) m.dispose();
  });
});

describe('fast layers (accelerateLayers) match tfjs-layers', () => {
  /** conv(stride 2, bias) → BN → ReLU6 → pad → depthwise(stride 2, ×2) → BN → ReLU6 → 1×1 conv (bias). */
  function buildNet(): tfl.LayersModel {
    const init = (seed: number): ReturnType<typeof tfl.initializers.glorotUniform> =>
      tfl.initializers.glorotUniform({ seed });
    const input = tfl.input({ shape: [12, 12, 3] });
    let x = tfl.layers
      .conv2d({
        filters: 6,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        kernelInitializer: init(1),
        biasInitializer: init(2),
      })
      .apply(input) as tfl.SymbolicTensor;
    x = tfl.layers
      .batchNormalization({ momentum: 0.9, betaInitializer: init(3), gammaInitializer: init(4) })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers
      .zeroPadding2d({
        padding: [
          [0, 1],
          [0, 1],
        ],
      })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers
      .depthwiseConv2d({
        kernelSize: 3,
        strides: 2,
        depthMultiplier: 2,
        padding: 'valid',
        useBias: false,
        depthwiseInitializer: init(5),
      })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ momentum: 0.5 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers
      .conv2d({ filters: 4, kernelSize: 1, kernelInitializer: init(6), biasInitializer: init(7) })
      .apply(x) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: x });
  }

  interface Run {
    out: Float32Array;
    grads: Map<string, Float32Array>;
    moving: Map<string, Float32Array>;
    inference: Float32Array;
  }

  function run(model: tfl.LayersModel, initial: Map<string, Float32Array>): Run {
    for (const w of model.weights) {
      const v = initial.get(w.originalName) as Float32Array;
      const t = tf.tensor(v, w.shape as number[]);
      w.write(t);
      t.dispose();
    }
    const x = tf.tensor4d(seeded(4 * 12 * 12 * 3, 21, -2, 3), [4, 12, 12, 3]);
    const dyWeights = tf.tensor4d(seeded(4 * 3 * 3 * 4, 22, -1, 1), [4, 3, 3, 4]);
    // Inference first: the training pass below moves the moving statistics.
    const inference = tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync() as Float32Array);
    const params = model.trainableWeights.map((w) => w.read() as tf.Variable);
    let out = new Float32Array();
    const { value, grads } = tf.variableGrads(() => {
      const y = model.apply(x, { training: true }) as tf.Tensor;
      out = y.dataSync() as Float32Array;
      return tf.sum(tf.mul(y, dyWeights));
    }, params);
    const named = new Map(
      model.trainableWeights.map((w) => [
        w.originalName,
        (grads[(w.read() as tf.Variable).name] as tf.Tensor).dataSync() as Float32Array,
      ]),
    );
    const moving = new Map(
      model.weights
        .filter((w) => w.originalName.includes('moving'))
        .map((w) => [w.originalName, w.read().dataSync() as Float32Array]),
    );
    tf.dispose([x, dyWeights, value, ...Object.values(grads)]);
    return { out, grads: named, moving, inference };
  }

  it('gives the same outputs, gradients and moving statistics (up to float rounding)', () => {
    const model = buildNet();
    // Non-trivial moving statistics, so inference mode is tested too.
    const initial = weightsByName(model);
    for (const [name, v] of initial) {
      if (name.includes('moving_mean')) initial.set(name, seeded(v.length, 30, -0.5, 0.5));
      if (name.includes('moving_variance')) initial.set(name, seeded(v.length, 31, 0.5, 2));
    }
    const stock = run(model, initial);
    accelerateLayers(model);
    accelerateLayers(model); // idempotent
    const fast = run(model, initial);

    expect(relError(stock.out, fast.out)).toBeLessThan(1e-5);
    expect(relError(stock.inference, fast.inference)).toBeLessThan(1e-5);
    expect([...fast.grads.keys()].sort()).toEqual([...stock.grads.keys()].sort());
    for (const [name, g] of stock.grads) {
      const f = fast.grads.get(name) as Float32Array;
      if (name === 'conv2d_Conv2D1/bias') {
        // A bias right before BatchNormalization has a zero gradient (BN removes the mean):
        // both sides are rounding noise.
        expect(Math.max(...Array.from(f, Math.abs)), name).toBeLessThan(1e-5);
        continue;
      }
      expect(relError(g, f), name).toBeLessThan(1e-4);
    }
    // Moving means agree; moving variances use the unbiased batch variance (× M/(M−1)) here.
    for (const [name, v] of stock.moving) {
      const f = fast.moving.get(name) as Float32Array;
      if (name.includes('moving_mean')) {
        expect(relError(v, f), name).toBeLessThan(1e-5);
        continue;
      }
      const [first, second] = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
      const isSecond = name.startsWith(`${second?.name}/`);
      expect(isSecond || name.startsWith(`${first?.name}/`)).toBe(true);
      // BN 1 sees [4, 6, 6, 6] with momentum 0.9; BN 2 sees [4, 3, 3, 12] with momentum 0.5.
      const momentum = isSecond ? 0.5 : 0.9;
      const m = isSecond ? 4 * 3 * 3 : 4 * 6 * 6;
      const init = initial.get(name) as Float32Array;
      // stock = init·μ + b·(1−μ) with biased b; ours = init·μ + b·M/(M−1)·(1−μ).
      const expected = Array.from(
        v,
        (s, i) => (init[i] ?? 0) * momentum + (s - (init[i] ?? 0) * momentum) * (m / (m - 1)),
      );
      expect(relError(expected, f), name).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  it('clips in the batch norm pass when a ReLU6 alone reads it, pads in the convolution (training mode)', async () => {
    const model = buildNet();
    accelerateLayers(model);
    const x = tf.tensor4d(seeded(2 * 12 * 12 * 3, 23, -2, 3), [2, 12, 12, 3]);
    const kernels = async (training: boolean): Promise<string[]> =>
      (await tf.profile(() => model.apply(x, { training }) as tf.Tensor)).kernelNames;
    // Training: no clip (BN's affine pass clips), no pad (the depthwise layer pads as 'same').
    const training = await kernels(true);
    expect(training).not.toContain('ClipByValue');
    expect(training).not.toContain('PadV2');
    const inference = await kernels(false);
    expect(inference).toContain('ClipByValue');
    expect(inference).toContain('PadV2');
    x.dispose();
    model.dispose();
  });

  it('makes BatchNormalization with scale: false trainable (tfjs-layers crashes on it)', async () => {
    const input = tfl.input({ shape: [8, 8, 2] });
    const bn = tfl.layers.batchNormalization({ scale: false, center: false });
    const stock = tfl.model({ inputs: input, outputs: bn.apply(input) as tfl.SymbolicTensor });
    const x = tf.tensor4d(seeded(2 * 8 * 8 * 2, 40, -3, 5), [2, 8, 8, 2]);
    expect(() => tf.tidy(() => stock.apply(x, { training: true }))).toThrow();
    // Saved and loaded through loadModel, the same layer trains: output = (x − mean)/√(var + ε).
    const dir = join(tmp, 'bn');
    await stock.save(fileSystemHandler(dir));
    const loaded = await loadModel({ model: dir, cutAt: bn.name, inputSize: 8, numClasses: 2, seed: 0 });
    const features = tfl.model({
      inputs: loaded.inputs,
      outputs: loaded.getLayer(bn.name).output as tfl.SymbolicTensor,
    });
    const got = tf.tidy(() => (features.apply(x, { training: true }) as tf.Tensor).dataSync());
    const want = tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3))).dataSync();
    });
    expect(relError(want, got)).toBeLessThan(1e-5);
    tf.dispose(x);
    stock.dispose();
    loaded.dispose();
  });
});
