// Conv2DBackpropFilter on the wasm backend: podium's kernel (stages/tf/kernels/filter-grad.as.ts
// on the threads of kernels/pool.ts) against the forward Conv2D of the same layer and against
// what XNNPACK compositions cost, each on fresh tensors as in training.
//   npm run build && node bench/filter-gradient.mjs [threads] [N,H,C,Co]
//     one 1×1 layer (default MobileNetV2's largest at 128 px, batch 32: x [32,64,64,16], dy
//     [32,64,64,96]), every form, ms per call (mean of 3 after a warm-up)
//   node bench/filter-gradient.mjs [threads] --layers
//     every Conv2D layer shape of MobileNetV2's 128-px training step (batch 32): podium's filter
//     gradient and the forward Conv2D of the same layer, timed alternately (median of 5), and
//     their ratio, which the machine's load moves much less than the times
// See docs/performance.md.
import os from 'node:os';

import { selectBackend } from '../dist/stages/tf/backend.js';

const { tf, detail } = await selectBackend('wasm', Number(process.argv[2] ?? 1));
const load = () => os.loadavg()[0].toFixed(2);

const filterGrad = (x, dy, [kh, kw], strides) =>
  tf.engine().runKernel(
    'Conv2DBackpropFilter',
    { x, dy },
    {
      strides,
      pad: 'same',
      dataFormat: 'NHWC',
      dilations: [1, 1],
      filterShape: [kh, kw, x.shape[3], dy.shape[3]],
    },
  );

/** ms of f(...inputs) including its read-back, inputs made fresh (not timed) by makeInputs. */
async function timeOnce(f, makeInputs) {
  const inputs = makeInputs();
  await Promise.all(inputs.map((t) => t.data()));
  const t0 = performance.now();
  const r = tf.tidy(() => f(...inputs));
  await r.data();
  const ms = performance.now() - t0;
  tf.dispose([r, ...inputs.filter((t) => !t.kept)]);
  return ms;
}

if (process.argv.includes('--layers')) {
  // [N, H, C, Co, k, stride]: the stem, then MobileNetV2's 1×1 layers at 128 px (each distinct shape once).
  const layers = [[32, 128, 3, 32, 3, 2]];
  for (const [h, c, co] of [
    [64, 32, 16],
    [64, 16, 96],
    [32, 96, 24],
    [32, 24, 144],
    [32, 144, 24],
    [16, 144, 32],
    [16, 32, 192],
    [16, 192, 32],
    [8, 192, 64],
    [8, 64, 384],
    [8, 384, 64],
    [8, 384, 96],
    [8, 96, 576],
    [8, 576, 96],
    [4, 576, 160],
    [4, 160, 960],
    [4, 960, 160],
    [4, 960, 320],
    [4, 320, 1280],
  ]) {
    layers.push([32, h, c, co, 1, 1]);
  }
  console.log(`${detail}; load ${load()}; ms per call, median of 5 (forward Conv2D and filter gradient alternately)`);
  let fwdTotal = 0;
  let gradTotal = 0;
  for (const [N, H, C, Co, k, s] of layers) {
    const OH = Math.ceil(H / s);
    const x0 = tf.keep(tf.randomNormal([N, H, H, C], 0, 1, 'float32', 1));
    const w0 = tf.keep(tf.randomNormal([k, k, C, Co], 0, 1, 'float32', 2));
    const dy0 = tf.keep(tf.randomNormal([N, OH, OH, Co], 0, 1, 'float32', 3));
    w0.kept = true;
    const forward = [];
    const grad = [];
    for (let i = 0; i < 6; i++) {
      const f = await timeOnce(
        (x) => tf.conv2d(x, w0, s, 'same'),
        () => [tf.add(x0, 0)],
      );
      const g = await timeOnce(
        (x, dy) => filterGrad(x, dy, [k, k], [s, s]),
        () => [tf.add(x0, 0), tf.add(dy0, 0)],
      );
      if (i > 0) {
        forward.push(f);
        grad.push(g);
      }
    }
    const median = (v) => v.sort((a, b) => a - b)[2];
    fwdTotal += median(forward);
    gradTotal += median(grad);
    console.log(
      `  x [${N},${H},${H},${C}] ${k}×${k}/${s} → ${Co}`.padEnd(34) +
        `Conv2D ${median(forward).toFixed(1).padStart(6)}   filter gradient ${median(grad).toFixed(1).padStart(6)}   ${(median(grad) / median(forward)).toFixed(2)}×`,
    );
    tf.dispose([x0, w0, dy0]);
  }
  console.log(
    `  all layers: Conv2D ${fwdTotal.toFixed(0)} ms, filter gradient ${gradTotal.toFixed(0)} ms, ${(gradTotal / fwdTotal).toFixed(2)}×; load ${load()}`,
  );
  process.exit(0);
}

const [N, H, C, Co] = (process.argv[3] ?? '32,64,16,96').split(',').map(Number);
const P = N * H * H;
const x0 = tf.randomNormal([N, H, H, C], 0, 1, 'float32', 1);
const dy0 = tf.randomNormal([N, H, H, Co], 0, 1, 'float32', 2);
const w0 = tf.randomNormal([1, 1, C, Co], 0, 1, 'float32', 3);
for (const t of [x0, dy0, w0]) t.kept = true;
const fresh = () => [tf.add(x0, 0), tf.add(dy0, 0)];
const variants = {
  'copy of x only (baseline)': (x) => tf.add(x, 0),
  'forward Conv2D (same layer)': (x) => tf.conv2d(x, w0, 1, 'same'),
  "podium's Conv2DBackpropFilter": (x, dy) => filterGrad(x, dy, [1, 1], [1, 1]),
  // The form podium used for k×k filters before its own kernel: one conv whose filter is all of dy.
  'conv form (XNNPACK)': (x, dy) =>
    tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid'),
  'BatchMatMul Xt·dY': (x, dy) => tf.matMul(tf.transpose(tf.reshape(x, [P, C])), tf.reshape(dy, [P, Co])),
  'BatchMatMul dYt·X': (x, dy) => tf.matMul(tf.transpose(tf.reshape(dy, [P, Co])), tf.reshape(x, [P, C])),
  'blocked loop (transposeA)': (x, dy) => tf.matMul(tf.reshape(x, [P, C]), tf.reshape(dy, [P, Co]), true, false),
};
console.log(`${detail}; x [${N},${H},${H},${C}], dy [${N},${H},${H},${Co}]; load ${load()}`);
async function time(f, makeInputs) {
  let total = 0;
  for (let i = 0; i < 4; i++) {
    const ms = await timeOnce(f, makeInputs);
    if (i > 0) total += ms;
  }
  return total / 3;
}
for (const [name, f] of Object.entries(variants))
  console.log(`  ${name.padEnd(30)} ${(await time(f, fresh)).toFixed(1).padStart(7)} ms (fresh tensors)`);
console.log(
  `  ${'BatchMatMul Xt·dY'.padEnd(30)} ${(await time(variants['BatchMatMul Xt·dY'], () => [x0, dy0])).toFixed(1).padStart(7)} ms (same dy every call: packing cached)`,
);
