/**
 * Numerical checks of stages/tf/wasm-gradients.ts: every gradient computed on
 * the 'wasm' backend (with our kernels) must match the 'cpu' backend (tfjs's
 * reference loops) to ~1e-4 relative, and a tiny tfjs-layers convnet must be
 * able to train on wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-layers' bundle registers all gradient functions (tf.grad needs them).
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it, vi } from 'vitest';

import { conv2DBackpropInputKernel, registerWasmGradientKernels } from '../../stages/tf/wasm-gradients.js';

type Backend = 'cpu' | 'wasm';
type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

const REL_TOL = 1e-4;

/** Deterministic values in [-1, 1) (mulberry32), identical on both backends. */
function seeded(size: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** max |a-b| / max |a|, so the tolerance scales with the gradient magnitude. */
function relError(expected: Float32Array, actual: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((expected[i] ?? 0) - (actual[i] ?? 0)));
    scale = Math.max(scale, Math.abs(expected[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-12);
}

async function use(backend: Backend): Promise<void> {
  if (tf.getBackend() !== backend) await tf.setBackend(backend);
}

interface GradCase {
  kind: 'conv' | 'depthwise';
  stride: number;
  pad: 'same' | 'valid';
  k: number;
  h: number;
  mult: number;
  /** Conv channels in → out (default 3 → 4). */
  channels?: [number, number];
}

/** dL/dx and dL/dfilter of L = Σ conv(x, f) · dyWeights, computed via tf.grads. */
async function convGrads(backend: Backend, c: GradCase, seed: number): Promise<[Float32Array, Float32Array]> {
  await use(backend);
  const [cin, cout] = c.channels ?? [3, 4];
  const xShape: Shape4 = [2, c.h, c.h + 1, cin]; // H odd/even, W the other parity
  const fShape: Shape4 = [c.k, c.k, cin, c.kind === 'conv' ? cout : c.mult];
  const forward = (x: tf.Tensor4D, f: tf.Tensor4D): tf.Tensor4D =>
    c.kind === 'conv' ? tf.conv2d(x, f, c.stride, c.pad) : tf.depthwiseConv2d(x, f, c.stride, c.pad);
  // Read the values outside tidy: returning big typed arrays from tf.tidy is
  // slow (it walks them element by element looking for tensors).
  const [gx, gf] = tf.tidy(() => {
    const x = tf.tensor4d(seeded(sizeOf(xShape), seed), xShape);
    const f = tf.tensor4d(seeded(sizeOf(fShape), seed + 1), fShape);
    const outShape = forward(x, f).shape;
    const w = tf.tensor(seeded(sizeOf(outShape), seed + 2), outShape);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(forward(a as tf.Tensor4D, b as tf.Tensor4D), w)),
    )([x, f]);
    if (grads.length !== 2) throw new Error('missing gradient');
    return grads;
  });
  if (gx === undefined || gf === undefined) throw new Error('missing gradient');
  const result: [Float32Array, Float32Array] = [gx.dataSync() as Float32Array, gf.dataSync() as Float32Array];
  tf.dispose([gx, gf]);
  return result;
}

/** Runs one gradient kernel directly (no forward pass needed). */
async function runKernel(
  backend: Backend,
  name: string,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
  attrs: Record<string, unknown>,
): Promise<Float32Array> {
  await use(backend);
  const out = tf.tidy(() => {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [key, v] of Object.entries(inputs)) tensors[key] = tf.tensor(v.data, v.shape);
    return tf.engine().runKernel(name, tensors, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  });
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return values;
}

beforeAll(async () => {
  registerWasmGradientKernels();
  registerWasmGradientKernels(); // idempotent: must neither throw nor double-wrap
  await tf.setBackend('cpu');
  await tf.setBackend('wasm'); // loads the .wasm binary from node_modules
  expect(tf.getBackend()).toBe('wasm');
});

describe('registration', () => {
  it('registers the missing kernels and our Conv2DBackpropInput for wasm only', () => {
    for (const name of [
      'Conv2DBackpropFilter',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
    ]) {
      expect(tf.getKernel(name, 'wasm')).toBeDefined();
    }
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(conv2DBackpropInputKernel);
    expect(tf.getKernel('Conv2DBackpropInput', 'cpu')?.kernelFunc).not.toBe(conv2DBackpropInputKernel);
  });

  it('is idempotent (no "already registered" re-registration)', () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      registerWasmGradientKernels();
      expect(warn.mock.calls.flat().join(' ')).not.toMatch(/already registered/);
    } finally {
      warn.mockRestore();
    }
  });
});

const gradCases: GradCase[] = [];
for (const kind of ['conv', 'depthwise'] as const) {
  for (const stride of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      for (const k of [1, 3, 5]) {
        for (const h of [9, 8]) {
          for (const mult of kind === 'conv' ? [1] : [1, 2]) gradCases.push({ kind, stride, pad, k, h, mult });
        }
      }
    }
  }
}
// 1×1 stride-1 filter gradients are a matrix product that transposes the smaller operand:
// cover more input than output channels too.
gradCases.push({ kind: 'conv', stride: 1, pad: 'same', k: 1, h: 9, mult: 1, channels: [6, 2] });
gradCases.push({ kind: 'conv', stride: 1, pad: 'valid', k: 1, h: 8, mult: 1, channels: [5, 5] });

describe('tf.grads on wasm matches cpu', () => {
  it.each(
    gradCases.map(
      (c, i) =>
        [
          `${c.kind} s=${c.stride} ${c.pad} k=${c.k} H=${c.h} M=${c.mult}${c.channels ? ` C=${c.channels.join('→')}` : ''}`,
          c,
          i,
        ] as const,
    ),
  )('%s', async (_label, c, i) => {
    const seed = 1000 * (i + 1);
    const [cpuX, cpuF] = await convGrads('cpu', c, seed);
    const [wasmX, wasmF] = await convGrads('wasm', c, seed);
    expect(relError(cpuX, wasmX)).toBeLessThan(REL_TOL);
    expect(relError(cpuF, wasmF)).toBeLessThan(REL_TOL);
  });
});

describe('gradient kernels called directly (explicit/numeric pads, asymmetric geometry)', () => {
  // Forward Conv2D on wasm mishandles numeric/explicit pads (wrong values and
  // heap corruption in tfjs-backend-wasm 4.22), so these cases feed dy
  // directly to the kernels instead of differentiating a wasm forward pass.
  const cases: Array<{
    stride: number | [number, number];
    pad: Pad;
    k: [number, number];
    h: number;
    round?: 'ceil' | 'floor' | 'round';
  }> = [
    {
      stride: 1,
      pad: [
        [0, 0],
        [2, 1],
        [0, 3],
        [0, 0],
      ],
      k: [3, 3],
      h: 7,
    },
    {
      stride: 2,
      pad: [
        [0, 0],
        [1, 0],
        [2, 2],
        [0, 0],
      ],
      k: [3, 2],
      h: 8,
    },
    { stride: 2, pad: 1, k: [3, 3], h: 8, round: 'ceil' },
    { stride: 3, pad: 2, k: [5, 5], h: 11, round: 'floor' },
    { stride: [2, 1], pad: 'same', k: [4, 3], h: 9 },
    { stride: [1, 3], pad: 'valid', k: [2, 5], h: 10 },
    { stride: 2, pad: 'same', k: [3, 3], h: 1 },
  ];
  it.each(cases.map((c, i) => [JSON.stringify(c), c, i] as const))('%s', async (_label, c, i) => {
    // Depthwise with multiplier 1 takes podium's own SIMD kernel, multiplier 2 the composition;
    // 5 channels also cover the kernel's scalar tail after its 4-wide vectors.
    for (const [kind, channels, last] of [
      ['conv', 3, 2],
      ['depthwise', 3, 2],
      ['depthwise', 5, 1],
    ] as const) {
      const xShape: Shape4 = [2, c.h, c.h + 2, channels];
      const fShape: Shape4 = [c.k[0], c.k[1], channels, last];
      const info = tf.backend_util.computeConv2DInfo(xShape, fShape, c.stride, 1, c.pad, c.round, kind === 'depthwise');
      const seed = 77 * (i + 1);
      const x = { shape: xShape, data: seeded(sizeOf(xShape), seed) };
      const filter = { shape: fShape, data: seeded(sizeOf(fShape), seed + 1) };
      const dy = { shape: info.outShape, data: seeded(sizeOf(info.outShape), seed + 2) };
      const common =
        kind === 'conv'
          ? { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.round }
          : { strides: c.stride, pad: c.pad, dilations: 1, dimRoundingMode: c.round };
      const [filterKernel, inputKernel] =
        kind === 'conv'
          ? ['Conv2DBackpropFilter', 'Conv2DBackpropInput']
          : ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
      const filterAttrs = { ...common, filterShape: fShape };
      const inputAttrs = { ...common, inputShape: xShape };
      expect(
        relError(
          await runKernel('cpu', filterKernel, { x, dy }, filterAttrs),
          await runKernel('wasm', filterKernel, { x, dy }, filterAttrs),
        ),
      ).toBeLessThan(REL_TOL);
      expect(
        relError(
          await runKernel('cpu', inputKernel, { dy, filter }, inputAttrs),
          await runKernel('wasm', inputKernel, { dy, filter }, inputAttrs),
        ),
      ).toBeLessThan(REL_TOL);
    }
  });

  it('delegates NCHW Conv2DBackpropInput to the wasm native kernel', async () => {
    const inputs = {
      dy: { shape: [2, 4, 4, 4], data: seeded(128, 5) },
      filter: { shape: [3, 3, 3, 4], data: seeded(108, 6) },
    };
    const attrs = { strides: 2, pad: 'same', dataFormat: 'NCHW', inputShape: [2, 3, 7, 8] };
    expect(
      relError(
        await runKernel('cpu', 'Conv2DBackpropInput', inputs, attrs),
        await runKernel('wasm', 'Conv2DBackpropInput', inputs, attrs),
      ),
    ).toBeLessThan(REL_TOL);
  });

  it('throws clear errors for unsupported attributes', async () => {
    const x = { shape: [1, 3, 5, 5], data: seeded(75, 1) };
    const dy = { shape: [1, 4, 5, 5], data: seeded(100, 2) };
    await expect(
      runKernel(
        'wasm',
        'Conv2DBackpropFilter',
        { x, dy },
        { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 4] },
      ),
    ).rejects.toThrow(/dataFormat 'NHWC'/);
    const xd = { shape: [1, 9, 9, 2], data: seeded(162, 3) };
    const dyd = { shape: [1, 5, 5, 2], data: seeded(50, 4) };
    await expect(
      runKernel(
        'wasm',
        'DepthwiseConv2dNativeBackpropFilter',
        { x: xd, dy: dyd },
        { strides: 1, pad: 'valid', dilations: 2, filterShape: [3, 3, 2, 1] },
      ),
    ).rejects.toThrow(/dilations must be 1/);
  });
});

describe("podium's depthwise input gradient sums in a fixed order", () => {
  // dx[n, y, x, c] = Σ dy[n, oy, ox, c] · w[i, j, c] over the taps (i, j) that reach the pixel, in
  // row-major order, from +0, each product and sum rounded to float32: the order the kernel
  // promises (kernels/depthwise-grad.as.ts), whichever of its paths — runs of 4 interior pixels
  // of a 3×3 stride-1 layer, single pixels at the edges, the channels after the last whole vector.
  const cases: Array<[string, Shape4, number, number, 'same' | 'valid']> = [
    ['3×3 stride 1 same, 37 channels', [2, 9, 13, 37], 3, 1, 'same'],
    ['3×3 stride 1 valid, 8 channels', [2, 8, 10, 8], 3, 1, 'valid'],
    ['3×3 stride 2 same', [2, 9, 9, 6], 3, 2, 'same'],
    ['5×5 stride 1 same', [1, 7, 6, 5], 5, 1, 'same'],
  ];
  it.each(cases)('%s', async (_label, xShape, k, stride, pad) => {
    const [N, H, W, C] = xShape;
    const fShape: Shape4 = [k, k, C, 1];
    const info = tf.backend_util.computeConv2DInfo(xShape, fShape, stride, 1, pad, undefined, true);
    const [OH, OW] = [info.outHeight, info.outWidth];
    const [top, left] = [info.padInfo.top, info.padInfo.left];
    const dy = seeded(N * OH * OW * C, 5);
    const w = seeded(k * k * C, 6);
    const f = Math.fround;
    const want = new Float32Array(N * H * W * C);
    for (let n = 0; n < N; n++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < C; c++) {
            let sum = 0;
            for (let i = 0; i < k; i++)
              for (let j = 0; j < k; j++) {
                const [ty, tx] = [y + top - i, x + left - j];
                if (ty % stride !== 0 || tx % stride !== 0) continue;
                const [oy, ox] = [ty / stride, tx / stride];
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                sum = f(sum + f(dy[((n * OH + oy) * OW + ox) * C + c]! * w[(i * k + j) * C + c]!));
              }
            want[((n * H + y) * W + x) * C + c] = sum;
          }
    const got = await runKernel(
      'wasm',
      'DepthwiseConv2dNativeBackpropInput',
      { dy: { shape: [N, OH, OW, C], data: dy }, filter: { shape: fShape, data: w } },
      { strides: stride, pad, dilations: 1, inputShape: xShape },
    );
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });
});

describe('memory', () => {
  it('leaks no tensors or wasm buffers', async () => {
    await use('wasm');
    const backend = tf.backend();
    const x = tf.tensor4d(seeded(2 * 9 * 8 * 4, 9), [2, 9, 8, 4]);
    const f = tf.tensor4d(seeded(3 * 3 * 4 * 5, 10), [3, 3, 4, 5]);
    const fd = tf.tensor4d(seeded(3 * 3 * 4 * 2, 11), [3, 3, 4, 2]);
    const before = [tf.memory().numTensors, backend.numDataIds()];
    for (const s of [1, 2]) {
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'same')))([
          x,
          f,
        ]);
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'valid')),
        )([x, fd]);
      });
    }
    expect([tf.memory().numTensors, backend.numDataIds()]).toEqual(before);
    tf.dispose([x, f, fd]);
  });
});

describe('tfjs-layers convnet', () => {
  /** conv2d → depthwiseConv2d (multiplier 2) → global average pool → dense. */
  function buildModel(): tfl.Sequential {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [16, 16, 3],
          filters: 8,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
        }),
        tfl.layers.depthwiseConv2d({
          kernelSize: 3,
          depthMultiplier: 2,
          padding: 'same',
          activation: 'relu',
          depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
        }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.dense({
          units: 4,
          activation: 'softmax',
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
        }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
    return model;
  }

  /** One fit() step on a fixed batch; returns the loss and the updated weights. */
  async function trainOneBatch(backend: Backend): Promise<{ loss: number; weights: Float32Array[] }> {
    await use(backend);
    const model = buildModel();
    const xs = tf.tensor4d(seeded(4 * 16 * 16 * 3, 21), [4, 16, 16, 3]);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
    const history = await model.fit(xs, ys, { epochs: 1, batchSize: 4, shuffle: false, verbose: 0 });
    const loss = Number(history.history['loss']?.[0]);
    const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
    tf.dispose([xs, ys]);
    model.dispose();
    return { loss, weights };
  }

  it('fits one batch on wasm with a finite loss and the same update as cpu', async () => {
    const wasm = await trainOneBatch('wasm');
    expect(Number.isFinite(wasm.loss)).toBe(true);
    const cpu = await trainOneBatch('cpu');
    expect(wasm.loss).toBeCloseTo(cpu.loss, 4);
    expect(wasm.weights.length).toBe(cpu.weights.length);
    cpu.weights.forEach((w, i) => {
      const actual = wasm.weights[i];
      if (actual === undefined) throw new Error(`missing weight ${i}`);
      expect(relError(w, actual)).toBeLessThan(1e-3);
    });
  });
});
