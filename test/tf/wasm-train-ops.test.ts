import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../stages/tf/backend.js';
import { BN_GRAD_STATS, BN_INPUT_GRAD, BN_STATS, RELU6_GRAD, SGD_MOMENTUM } from '../../stages/tf/wasm-train-ops.js';

beforeAll(async () => {
  expect((await selectBackend('wasm')).name).toBe('wasm');
});

/** Values that probe the edges: zeros, ±0, the bounds, beyond them, and ordinary numbers. */
function probe(n: number, seed: number, scale: number): Float32Array {
  const edges = [0, -0, 6, 6.000001, 5.999999, -1e-30, 1e-40, 3, -3, 7];
  let a = seed;
  return Float32Array.from({ length: n }, (_, i) => {
    if (i < edges.length) return edges[i]!;
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return (a / 2 ** 31 - 0.3) * scale;
  });
}

const bits = (t: tf.Tensor): Buffer => Buffer.from((t.dataSync() as Float32Array).buffer.slice(0));

describe("podium's wasm training ops equal the tfjs ops bit for bit", () => {
  it('ReLU6 gradient: dy·step(y·(max − y)), including −0 where dy < 0 is blocked, and a length that is no multiple of 4', () => {
    tf.tidy(() => {
      const y = tf.tensor(probe(1027, 1, 9));
      const dy = tf.tensor(probe(1027, 2, 4).reverse());
      const ours = tf.engine().runKernel(RELU6_GRAD, { dy, y }, { maxValue: 6 }) as tf.Tensor;
      const ops = tf.mul(dy, tf.step(tf.mul(y, tf.sub(6, y))));
      expect(bits(ours).equals(bits(ops))).toBe(true);
    });
  });

  it("batch norm's input gradient: a·dy + (k·x + c) as two 1×1 depthwise passes (XNNPACK) and an Add, 7 and 64 channels", () => {
    for (const shape of [
      [3, 5, 6, 7],
      [2, 9, 9, 64],
    ]) {
      tf.tidy(() => {
        const c = shape[3]!;
        const size = shape.reduce((p, q) => p * q, 1);
        const x = tf.tensor4d(probe(size, 9, 5), shape as [number, number, number, number]);
        const dy = tf.tensor4d(probe(size, 10, 2).reverse(), shape as [number, number, number, number]);
        const [a, k, cst] = [11, 12, 13].map((seed) => tf.tensor1d(probe(c, seed, 3)));
        const ours = tf.engine().runKernel(BN_INPUT_GRAD, { dy, x, a, k, c: cst }, {}) as tf.Tensor;
        // What lean-batch-norm.ts computes without the kernel.
        const filter = (v: tf.Tensor1D) => tf.reshape(v, [1, 1, c, 1]) as tf.Tensor4D;
        const scaled = tf.depthwiseConv2d(dy, filter(a!), 1, 'valid');
        const shifted = tf.fused.depthwiseConv2d({ x, filter: filter(k!), strides: 1, pad: 'valid', bias: cst });
        expect(bits(ours).equals(bits(tf.add(scaled, shifted)))).toBe(true);
      });
    }
  });

  it("batch norm's gradient kernels with a fused ReLU6 (scale, shift) gate dy where the forward pass's clipped output did", () => {
    tf.tidy(() => {
      const shape: [number, number, number, number] = [2, 5, 3, 23]; // blocks of 16, 4 and 1 channels
      const c = 23;
      const size = 2 * 5 * 3 * c;
      // Channels 0–9 pass x through (x's first pixel holds the edges: 0, −0, 6, just inside and
      // beyond); channels 10–15 map x = 1.5 and 4.5 onto exactly 0 and 6; the rest are arbitrary.
      const xs = probe(size, 14, 5);
      for (let i = 10; i < size; i += 7) if (i % c >= 10 && i % c < 16) xs[i] = i % 2 ? 1.5 : 4.5;
      const scale = Float32Array.from(probe(c, 20, 3), (v, ch) => (ch < 10 ? 1 : ch < 16 ? 2 : v));
      const shift = Float32Array.from(probe(c, 21, 4), (v, ch) => (ch < 10 ? 0 : ch < 16 ? -3 : v));
      const x = tf.tensor4d(xs, shape);
      const [sc, sh] = [tf.tensor1d(scale), tf.tensor1d(shift)];
      // The forward pass's output on wasm (lean-batch-norm.ts): one 1×1 depthwise pass with bias and ReLU6.
      const y = tf
        .engine()
        .runKernel(
          'FusedDepthwiseConv2D',
          { x, filter: tf.reshape(sc, [1, 1, c, 1]), bias: sh },
          { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], activation: 'relu6' },
        ) as tf.Tensor;
      const open = (y.dataSync() as Float32Array).filter((v) => v > 0 && v < 6).length;
      expect(open).toBeGreaterThan(size / 10); // the gate is open and shut
      expect(open).toBeLessThan(size - size / 10);
      const dy = tf.tensor4d(probe(size, 16, 2).reverse(), shape);
      const [a, k, cc] = [17, 18, 19].map((seed) => tf.tensor1d(probe(c, seed, 3)));
      const g = tf.engine().runKernel(RELU6_GRAD, { dy, y }, { maxValue: 6 }) as tf.Tensor;
      const run = (kernel: string, inputs: tf.NamedTensorMap, attrs = {}) =>
        [tf.engine().runKernel(kernel, inputs, attrs)].flat() as tf.Tensor[];
      const gate = { scale: sc, shift: sh };
      const stats = run(BN_GRAD_STATS, { dy, x, ...gate }, { maxValue: 6 });
      const statsOfG = run(BN_GRAD_STATS, { dy: g, x });
      stats.forEach((t, i) => expect(bits(t).equals(bits(statsOfG[i]!))).toBe(true));
      const [dx] = run(BN_INPUT_GRAD, { dy, x, ...gate, a: a!, k: k!, c: cc! }, { maxValue: 6 });
      const [dxOfG] = run(BN_INPUT_GRAD, { dy: g, x, a: a!, k: k!, c: cc! });
      expect(bits(dx!).equals(bits(dxOfG!))).toBe(true);
      expect(bits(dx!).equals(bits(run(BN_INPUT_GRAD, { dy, x, a: a!, k: k!, c: cc! })[0]!))).toBe(false);
    });
  });

  it('the fused gate asks for scale and shift together, each [C]', () => {
    tf.tidy(() => {
      const x = tf.zeros([2, 3, 3, 4]);
      const v = tf.ones([4]);
      const run = (inputs: tf.NamedTensorMap) => () =>
        tf.engine().runKernel(BN_GRAD_STATS, { dy: x, x, ...inputs }, { maxValue: 6 });
      expect(run({ scale: v })).toThrow(/scale and shift go together/);
      expect(run({ scale: tf.ones([3]), shift: tf.ones([3]) })).toThrow(/must be \[4\]/);
      expect(() => tf.engine().runKernel(BN_GRAD_STATS, { dy: x, x, scale: v, shift: v }, {})).toThrow(
        /maxValue must be > 0/,
      );
    });
  });

  it('SGD with momentum, with and without weight decay', () => {
    tf.tidy(() => {
      const w = tf.tensor(probe(1031, 3, 0.2));
      const g = tf.tensor(probe(1031, 4, 0.05));
      const buf = tf.tensor(probe(1031, 5, 0.01));
      for (const decay of [1e-4, 0]) {
        const [w1, b1] = tf
          .engine()
          .runKernel(SGD_MOMENTUM, { w, g, buf }, { lr: 0.01, momentum: 0.9, decay }) as tf.Tensor[];
        const gd = decay ? tf.add(g, tf.mul(w, decay)) : g;
        const b2 = tf.add(tf.mul(buf, 0.9), gd);
        const w2 = tf.sub(w, tf.mul(b2, 0.01));
        expect(bits(b1!).equals(bits(b2))).toBe(true);
        expect(bits(w1!).equals(bits(w2))).toBe(true);
      }
    });
  });
});

/** Largest |a − b| relative to the largest |b|. */
function relError(a: tf.Tensor, b: tf.Tensor): number {
  const va = a.dataSync();
  const vb = b.dataSync();
  let worst = 0;
  let scale = 1e-30;
  for (let i = 0; i < vb.length; i++) {
    worst = Math.max(worst, Math.abs(va[i]! - vb[i]!));
    scale = Math.max(scale, Math.abs(vb[i]!));
  }
  return worst / scale;
}

describe("podium's batch-norm statistics on wasm agree with the tfjs ops (float rounding aside)", () => {
  const cases: Array<[string, number[], number]> = [
    ['NHWC, channels a multiple of 4', [3, 5, 7, 8], 0],
    ['7 channels (a scalar tail), |mean| ≫ std', [2, 4, 6, 7], 1000],
    ['rank 2 (dense)', [10, 5], 3],
  ];
  it.each(cases)('%s', (_label, shape, offset) => {
    tf.tidy(() => {
      const size = shape.reduce((a, b) => a * b, 1);
      const c = shape[shape.length - 1]!;
      const x = tf.add(tf.tensor(probe(size, 7, 2), shape), offset);
      const dy = tf.tensor(probe(size, 8, 1), shape);
      const flat = (t: tf.Tensor): tf.Tensor2D => tf.reshape(t, [size / c, c]);
      const [mean, variance] = tf.engine().runKernel(BN_STATS, { x }, {}) as tf.Tensor[];
      const refMean = tf.mean(flat(x), 0);
      expect(mean!.shape).toEqual([c]);
      expect(relError(mean!, refMean)).toBeLessThan(1e-6);
      expect(relError(variance!, tf.mean(tf.squaredDifference(flat(x), refMean), 0))).toBeLessThan(1e-5);
      const [meanDy, meanDyX] = tf.engine().runKernel(BN_GRAD_STATS, { dy, x }, {}) as tf.Tensor[];
      expect(relError(meanDy!, tf.mean(flat(dy), 0))).toBeLessThan(1e-5);
      expect(relError(meanDyX!, tf.mean(flat(tf.mul(dy, x)), 0))).toBeLessThan(1e-5);
    });
  });
});

describe("podium's batch-norm statistics sum each channel over the rows in order, in float32", () => {
  // Images large enough that the kernels sum them in many runs of rows (batch-norm.as.ts), with
  // 16-, 4- and 1-channel blocks: the sums must be exactly the row-order float32 ones.
  it('mean, variance and the gradient sums (with a fused ReLU6 gate) bit for bit', () => {
    const [n, h, w, c] = [2, 50, 50, 41];
    const rows = h * w;
    const size = n * rows * c;
    const x = probe(size, 21, 4).map((v) => v + 2);
    const dy = probe(size, 22, 1);
    const scale = probe(c, 23, 3);
    const shift = probe(c, 24, 6);
    const f = Math.fround;
    const count = f(f(n) * f(rows));
    /** Per channel: Σ over images (in order) of the per-image row-order sums of term(i), over count. */
    const meanOf = (term: (i: number) => number): Float32Array =>
      Float32Array.from({ length: c }, (_, ch) => {
        let total = 0;
        for (let img = 0; img < n; img++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s = f(s + term((img * rows + r) * c + ch));
          total = f(total + s);
        }
        return f(total / count);
      });
    const mean = meanOf((i) => x[i]!);
    const variance = meanOf((i) => {
      const d = f(x[i]! - mean[i % c]!);
      return f(d * d);
    });
    // The fused ReLU6's gate, from the BN's output before the clip: shift + x·scale, rounded twice.
    const yOf = (i: number): number => f(shift[i % c]! + f(x[i]! * scale[i % c]!));
    const gated = (i: number): number => f(dy[i]! * (f(yOf(i) * f(6 - yOf(i))) > 0 ? 1 : 0));
    const meanDy = meanOf(gated);
    const meanDyX = meanOf((i) => f(gated(i) * x[i]!));
    tf.tidy(() => {
      const t = (v: Float32Array) => tf.tensor4d(v, [n, h, w, c]);
      const [m, v] = tf.engine().runKernel(BN_STATS, { x: t(x) }, {}) as tf.Tensor[];
      const [gDy, gDyX] = tf
        .engine()
        .runKernel(
          BN_GRAD_STATS,
          { dy: t(dy), x: t(x), scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) },
          { maxValue: 6 },
        ) as tf.Tensor[];
      for (const [got, want] of [
        [m!, mean],
        [v!, variance],
        [gDy!, meanDy],
        [gDyX!, meanDyX],
      ] as const)
        expect(bits(got).equals(Buffer.from(want.buffer))).toBe(true);
    });
  });
});
