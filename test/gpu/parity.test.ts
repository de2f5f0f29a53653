// webgpu against the cpu backend (the reference: plain JavaScript loops) on the layer shapes of
// MobileNetV2 — forward ops and their gradients — at small spatial sizes (software Vulkan is slow).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { selectBackend } from '../../stages/tf/backend.js';
import type * as tfc from '@tensorflow/tfjs-core';
import { describeGpu } from './gpu.js';

type Tf = typeof tfc;
type Case = { name: string; inputs: number[][]; f: (tf: Tf, xs: tfc.Tensor[]) => tfc.Tensor };

/** Deterministic N(0,1)-ish values (Box–Muller on a 32-bit LCG): the same on every backend. */
function normals(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) * scale;
  return out;
}
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

// Shapes from MobileNetV2 (batch 2): the stem (3×3 stride 2), an expansion (1×1), depthwise 3×3
// at stride 1 and 2, batch norm in training and inference mode, ReLU6, pooling, the classifier.
const cases: Case[] = [
  {
    name: 'conv 3x3 stride 2 (stem)',
    inputs: [
      [2, 32, 32, 3],
      [3, 3, 3, 32],
    ],
    f: (tf, [x, w]) => tf.conv2d(x as tfc.Tensor4D, w as tfc.Tensor4D, 2, 'same'),
  },
  {
    name: 'conv 3x3 stride 1',
    inputs: [
      [2, 8, 8, 16],
      [3, 3, 16, 24],
    ],
    f: (tf, [x, w]) => tf.conv2d(x as tfc.Tensor4D, w as tfc.Tensor4D, 1, 'same'),
  },
  {
    name: 'conv 1x1 expand',
    inputs: [
      [2, 16, 16, 16],
      [1, 1, 16, 96],
    ],
    f: (tf, [x, w]) => tf.conv2d(x as tfc.Tensor4D, w as tfc.Tensor4D, 1, 'same'),
  },
  {
    name: 'depthwise 3x3 stride 1',
    inputs: [
      [2, 16, 16, 96],
      [3, 3, 96, 1],
    ],
    f: (tf, [x, w]) => tf.depthwiseConv2d(x as tfc.Tensor4D, w as tfc.Tensor4D, 1, 'same'),
  },
  {
    name: 'depthwise 3x3 stride 2',
    inputs: [
      [2, 16, 16, 96],
      [3, 3, 96, 1],
    ],
    f: (tf, [x, w]) => tf.depthwiseConv2d(x as tfc.Tensor4D, w as tfc.Tensor4D, 2, 'same'),
  },
  {
    name: 'batch norm (training: batch moments)',
    inputs: [[2, 8, 8, 32], [32], [32]],
    f: (tf, [x, g, b]) => {
      const m = tf.moments(x!, [0, 1, 2]);
      return tf.batchNorm(x!, m.mean, m.variance, b, g, 1e-3);
    },
  },
  {
    name: 'batch norm (inference: moving statistics)',
    inputs: [[2, 8, 8, 32], [32], [32], [32], [32]],
    f: (tf, [x, g, b, mean, v]) => tf.batchNorm(x!, mean!, tf.add(tf.square(v!), 0.1), b, g, 1e-3),
  },
  { name: 'relu6', inputs: [[2, 8, 8, 32]], f: (tf, [x]) => tf.relu6(tf.mul(x!, 4)) },
  { name: 'global average pooling', inputs: [[2, 4, 4, 320]], f: (tf, [x]) => tf.mean(x!, [1, 2]) },
  {
    name: 'average pooling 2x2',
    inputs: [[2, 8, 8, 16]],
    f: (tf, [x]) => tf.avgPool(x as tfc.Tensor4D, 2, 2, 'valid'),
  },
  {
    name: 'max pooling 3x3 stride 2',
    inputs: [[2, 9, 9, 16]],
    f: (tf, [x]) => tf.maxPool(x as tfc.Tensor4D, 3, 2, 'same'),
  },
  {
    name: 'dense + softmax',
    inputs: [[2, 1280], [1280, 10], [10]],
    f: (tf, [x, w, b]) => tf.softmax(tf.add(tf.matMul(x as tfc.Tensor2D, w as tfc.Tensor2D), b!)),
  },
  {
    name: 'inverted residual block (expand, BN, ReLU6, depthwise, BN, ReLU6, project, BN, add)',
    inputs: [
      [2, 8, 8, 16],
      [1, 1, 16, 96],
      [3, 3, 96, 1],
      [1, 1, 96, 16],
    ],
    f: (tf, [x, we, wd, wp]) => {
      const bn = (t: tfc.Tensor): tfc.Tensor => {
        const m = tf.moments(t, [0, 1, 2]);
        return tf.batchNorm(t, m.mean, m.variance, tf.zerosLike(m.mean), tf.onesLike(m.mean), 1e-3);
      };
      const e = tf.relu6(bn(tf.conv2d(x as tfc.Tensor4D, we as tfc.Tensor4D, 1, 'same')));
      const d = tf.relu6(bn(tf.depthwiseConv2d(e as tfc.Tensor4D, wd as tfc.Tensor4D, 1, 'same')));
      return tf.add(x!, bn(tf.conv2d(d as tfc.Tensor4D, wp as tfc.Tensor4D, 1, 'same')));
    },
  },
];

interface Result {
  out: Float32Array;
  grads: Float32Array[];
}

/** The case's output and the gradients of Σ out·r with respect to every input. */
async function evaluate(tf: Tf, c: Case, seed: number): Promise<Result> {
  const xs = c.inputs.map((shape, i) => tf.tensor(normals(size(shape), seed + i, i === 0 ? 1 : 0.3), shape));
  const out = tf.tidy(() => c.f(tf, xs));
  const r = tf.tensor(normals(size(out.shape), seed + 100), out.shape);
  const grads = tf.grads((...ts: tfc.Tensor[]) => tf.sum(tf.mul(c.f(tf, ts), r)))(xs);
  const result = {
    out: (await out.data()) as Float32Array,
    grads: await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array)),
  };
  tf.dispose([...xs, out, r, ...grads]);
  return result;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const relErr = (a: Float32Array, ref: Float32Array): number => {
  let d = 0,
    n = 0;
  ref.forEach((v, i) => {
    d += (a[i]! - v) ** 2;
    n += v * v;
  });
  return Math.sqrt(d / Math.max(n, 1e-30));
};

describeGpu('webgpu ops and gradients match the cpu backend (MobileNetV2 layer shapes)', () => {
  const reference = new Map<string, Result>();
  let tf: Tf;
  beforeAll(async () => {
    tf = (await selectBackend('cpu')).tf;
    for (const [i, c] of cases.entries()) reference.set(c.name, await evaluate(tf, c, 1000 * (i + 1)));
    expect((await selectBackend('webgpu')).name).toBe('webgpu');
  });
  afterAll(async () => {
    await selectBackend('cpu');
  });

  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    expect(tf.getBackend()).toBe('webgpu');
    const ref = reference.get(c.name)!;
    const got = await evaluate(tf, c, 1000 * (i + 1));
    // Outputs: the largest difference relative to the largest output (|outputs| reach ~20 for
    // the convolutions); gradients: relative L2 error. Both are printed (docs/gpu.md cites them).
    const scale = Math.max(1, ...ref.out.map(Math.abs));
    const outErr = maxAbsDiff(got.out, ref.out) / scale;
    const gradErr = Math.max(...got.grads.map((g, j) => relErr(g, ref.grads[j]!)));
    console.log(`parity ${c.name}: output ${outErr.toExponential(1)}, gradients ${gradErr.toExponential(1)}`);
    expect(outErr).toBeLessThan(1e-5);
    expect(got.grads).toHaveLength(ref.grads.length);
    got.grads.forEach((g, j) => expect(relErr(g, ref.grads[j]!), `gradient of input ${j}`).toBeLessThan(1e-5));
  });
});

describeGpu('webgpu is deterministic', () => {
  it('sums matrix products in a fixed order: no split-K atomics, the same bits twice', async () => {
    const { tf } = await selectBackend('webgpu');
    // The packed program (3), not split-K (1), whatever the shape (stages/tf/webgpu.ts says why).
    expect(tf.env().get('WEBGPU_MATMUL_PROGRAM_TYPE')).toBe(3);
    // A 1×1 filter gradient's shape, where tfjs would otherwise split K: 96×24 outputs over 8192.
    const a = tf.tensor(normals(8192 * 96, 7), [8192, 96]);
    const b = tf.tensor(normals(8192 * 24, 8), [8192, 24]);
    const once = async (): Promise<Float32Array> => {
      const c = tf.matMul(a, b, true, false);
      const v = (await c.data()) as Float32Array;
      c.dispose();
      return v;
    };
    const [first, second] = [await once(), await once()];
    expect(Buffer.from(second.buffer).equals(Buffer.from(first.buffer))).toBe(true);
    tf.dispose([a, b]);
  });
});
