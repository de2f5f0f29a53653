// GB/s of podium's batch-norm training kernels on one activation shape (wasm, every core): the
// statistics (2 reads of x), the gradient sums (dy and x read, a fused ReLU6's gate recomputed from
// x) and the input gradient (dy, x read, dx written), each run 10 times after 2 warm-ups. A kernel bound by
// memory shows it here as a rate well under the input gradient's, which streams contiguously.
// No reference: the figures compare the kernels with each other and with themselves across
// changes (docs/performance.md, session 9). Quiet machine only.
//
//   npx tsc -p tsconfig.json && node bench/batch-norm-kernels.mjs [N,H,W,C]   (default 32,56,56,144)
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../dist/stages/tf/backend.js';
import { BN_GRAD_STATS, BN_INPUT_GRAD, BN_STATS } from '../dist/stages/tf/wasm-train-ops.js';
import { Rng } from '../dist/stages/data/random.js';

const { detail } = await selectBackend('wasm');
const shape = (process.argv[2] ?? '32,56,56,144').split(',').map(Number);
if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
  console.error('usage: node bench/batch-norm-kernels.mjs N,H,W,C');
  process.exit(2);
}
const size = shape.reduce((a, b) => a * b, 1);
const values = (seed, scale) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * scale);
};
const x = tf.tensor(values(1, 2), shape);
const dy = tf.tensor(values(2, 1), shape);
const C = shape[3];
// A fused ReLU6 on 4x + 2 (x in [-2, 2]): the gate is open and shut.
const [scale, shift] = [tf.fill([C], 4), tf.fill([C], 2)];
const [a, k, c] = [tf.ones([C]), tf.ones([C]), tf.zeros([C])];
const MB = (size * 4) / 1e6;
console.log(`batch-norm kernels on [${shape.join(', ')}] (${MB.toFixed(0)} MB an array), ${detail}`);
function time(name, passes, run) {
  for (let i = 0; i < 2; i++) tf.dispose(run());
  const rounds = 10;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) tf.dispose(run());
  const ms = (performance.now() - t0) / rounds;
  console.log(
    `  ${name.padEnd(16)} ${ms.toFixed(2).padStart(7)} ms  ${((passes * MB) / ms).toFixed(1).padStart(5)} GB/s (${passes} arrays read or written)`,
  );
}
time('statistics', 2, () => tf.engine().runKernel(BN_STATS, { x }, {}));
time('gradient sums', 2, () => tf.engine().runKernel(BN_GRAD_STATS, { dy, x, scale, shift }, { maxValue: 6 }));
time('input gradient', 3, () =>
  tf.engine().runKernel(BN_INPUT_GRAD, { dy, x, scale, shift, a, k, c }, { maxValue: 6 }),
);
