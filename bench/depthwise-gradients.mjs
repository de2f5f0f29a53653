// The depthwise convolution's gradients on the wasm backend — podium's kernels
// (stages/tf/kernels/depthwise-grad.as.ts on the threads of kernels/pool.ts) — against the forward
// depthwise convolution (XNNPACK) of the same layer, for every depthwise layer of MobileNetV2's
// training step, each on fresh tensors as in training.
//   npm run build && node bench/depthwise-gradients.mjs [--threads N] [--size 128|224] [--batch 32]
// Per layer shape: ms per call, median of 5 (forward, input gradient and filter gradient timed in
// turn), and each gradient's ratio to the forward, which the machine's load moves much less than
// the times. The totals weight each shape by how many layers of the model have it.
// See docs/performance.md.
import os from 'node:os';

import { selectBackend } from '../dist/stages/tf/backend.js';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const SIZE = Number(arg('--size') ?? 128);
const N = Number(arg('--batch') ?? 32);
const { tf, detail } = await selectBackend('wasm', Number(arg('--threads') ?? os.availableParallelism()));
const load = () => os.loadavg()[0].toFixed(2);

// MobileNetV2's depthwise layers (3×3): [input side as a fraction of the image side's half, channels, stride, how many].
const LAYERS = [
  [1, 32, 1, 1],
  [1, 96, 2, 1],
  [1 / 2, 144, 1, 1],
  [1 / 2, 144, 2, 1],
  [1 / 4, 192, 1, 2],
  [1 / 4, 192, 2, 1],
  [1 / 8, 384, 1, 4],
  [1 / 8, 576, 1, 2],
  [1 / 8, 576, 2, 1],
  [1 / 16, 960, 1, 3],
];

const attrs = (shape, s) => ({
  strides: [s, s],
  pad: 'same',
  dilations: [1, 1],
  dimRoundingMode: undefined,
  inputShape: shape,
  filterShape: [3, 3, shape[3], 1],
});

/**
 * ms of f(...inputs), inputs made fresh (not timed) by makeInputs. The wasm backend's kernels
 * (podium's pool included) finish before runKernel returns, so no read-back is timed: copying
 * the output out would weigh an input gradient (x's size) 4× a stride-2 forward (dy's size).
 */
async function timeOnce(f, makeInputs) {
  const inputs = makeInputs();
  await Promise.all(inputs.map((t) => t.data()));
  const t0 = performance.now();
  const r = tf.tidy(() => f(...inputs));
  const ms = performance.now() - t0;
  await r.data();
  tf.dispose([r, ...inputs]);
  return ms;
}

console.log(`${detail}; ${SIZE} px, batch ${N}; load ${load()}; ms per call, median of 5`);
const totals = { forward: 0, input: 0, filter: 0 };
for (const [f, C, s, count] of LAYERS) {
  const H = Math.round((SIZE / 2) * f);
  const OH = Math.ceil(H / s);
  const x0 = tf.keep(tf.randomNormal([N, H, H, C], 0, 1, 'float32', 1));
  const w0 = tf.keep(tf.randomNormal([3, 3, C, 1], 0, 1, 'float32', 2));
  const dy0 = tf.keep(tf.randomNormal([N, OH, OH, C], 0, 1, 'float32', 3));
  const a = attrs(x0.shape, s);
  const runs = { forward: [], input: [], filter: [] };
  for (let i = 0; i < 6; i++) {
    const fwd = await timeOnce(
      (x) => tf.depthwiseConv2d(x, w0, s, 'same'),
      () => [tf.add(x0, 0)],
    );
    const inp = await timeOnce(
      (dy, w) => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, a),
      () => [tf.add(dy0, 0), tf.add(w0, 0)],
    );
    const fil = await timeOnce(
      (x, dy) => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, a),
      () => [tf.add(x0, 0), tf.add(dy0, 0)],
    );
    if (i > 0) {
      runs.forward.push(fwd);
      runs.input.push(inp);
      runs.filter.push(fil);
    }
  }
  const median = (v) => v.sort((p, q) => p - q)[2];
  const m = { forward: median(runs.forward), input: median(runs.input), filter: median(runs.filter) };
  for (const k of Object.keys(totals)) totals[k] += count * m[k];
  console.log(
    `  x [${N},${H},${H},${C}] 3×3/${s} ×${count}`.padEnd(30) +
      `forward ${m.forward.toFixed(1).padStart(6)}   input gradient ${m.input.toFixed(1).padStart(6)} (${(m.input / m.forward).toFixed(2)}×)` +
      `   filter gradient ${m.filter.toFixed(1).padStart(6)} (${(m.filter / m.forward).toFixed(2)}×)`,
  );
  tf.dispose([x0, w0, dy0]);
}
console.log(
  `  a step's depthwise layers: forward ${totals.forward.toFixed(0)} ms, input gradient ${totals.input.toFixed(0)} ms (${(totals.input / totals.forward).toFixed(2)}×), filter gradient ${totals.filter.toFixed(0)} ms (${(totals.filter / totals.forward).toFixed(2)}×); load ${load()}`,
);
