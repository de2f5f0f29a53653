// Why the wasm filter gradients are slow: one 1×1 Conv2DBackpropFilter (MobileNetV2's largest,
// x [32,64,64,16], dy [32,64,64,96] at 128 px, batch 32) computed four ways, each on fresh
// tensors as in training, and once more with dy reused so XNNPACK's packed copy is cached.
//   npm run build && node bench/filter-gradient.mjs [threads] [N,H,C,Co]
// See docs/performance.md. ms per call, mean of 3 after a warm-up.
import os from 'node:os';

import { selectBackend } from '../dist/stages/tf/backend.js';

const { tf, detail } = await selectBackend('wasm', Number(process.argv[2] ?? 1));
const [N, H, C, Co] = (process.argv[3] ?? '32,64,16,96').split(',').map(Number);
const P = N * H * H;
const x0 = tf.randomNormal([N, H, H, C], 0, 1, 'float32', 1);
const dy0 = tf.randomNormal([N, H, H, Co], 0, 1, 'float32', 2);
const fresh = () => [tf.add(x0, 0), tf.add(dy0, 0)];
const variants = {
  'copy of x only (baseline)': (x) => tf.add(x, 0),
  "podium's Conv2DBackpropFilter": (x, dy) => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], filterShape: [1, 1, C, Co] }),
  // The general form podium uses for k×k filters: one conv whose filter is all of dy.
  'conv form (k×k path)': (x, dy) => tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid'),
  'BatchMatMul Xt·dY': (x, dy) => tf.matMul(tf.transpose(tf.reshape(x, [P, C])), tf.reshape(dy, [P, Co])),
  'BatchMatMul dYt·X': (x, dy) => tf.matMul(tf.transpose(tf.reshape(dy, [P, Co])), tf.reshape(x, [P, C])),
  'blocked loop (transposeA)': (x, dy) => tf.matMul(tf.reshape(x, [P, C]), tf.reshape(dy, [P, Co]), true, false),
};
console.log(`${detail}; x [${N},${H},${H},${C}], dy [${N},${H},${H},${Co}]; load ${os.loadavg()[0].toFixed(2)}`);
async function time(f, makeInputs) {
  let total = 0;
  for (let i = 0; i < 4; i++) {
    const inputs = makeInputs();
    await Promise.all(inputs.map((t) => t.data()));
    const t0 = performance.now();
    const r = tf.tidy(() => f(...inputs));
    await r.data();
    if (i > 0) total += performance.now() - t0;
    tf.dispose([r, ...inputs.filter((t) => t !== x0 && t !== dy0)]);
  }
  return total / 3;
}
for (const [name, f] of Object.entries(variants)) console.log(`  ${name.padEnd(30)} ${(await time(f, fresh)).toFixed(1).padStart(7)} ms (fresh tensors)`);
console.log(`  ${'BatchMatMul Xt·dY'.padEnd(30)} ${(await time(variants['BatchMatMul Xt·dY'], () => [x0, dy0])).toFixed(1).padStart(7)} ms (same dy every call: packing cached)`);
