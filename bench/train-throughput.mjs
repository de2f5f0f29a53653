// MobileNetV2 training throughput alone (no reference, no profile): the quick figure for comparing
// two checkouts of podium back to back on the same machine (run it from each checkout's root, after
// its `npm run build`, alternating; bench/train.mjs is the full benchmark beside PyTorch).
//
//   node bench/train-throughput.mjs [--threads N] [--size PX] [--batch N] [--steps N]
//
// Defaults: every core, 128 px, batch 32, 5 timed steps after 2 untimed ones; fixed pixels and
// labels, 6 classes, SGD with momentum and weight decay as in bench/sgd-recipe.mjs. Prints img/s
// of the timed steps (forward, backward, update) and the load average.
import os from 'node:os';

import { Rng } from '../dist/stages/data/random.js';
import { selectBackend } from '../dist/stages/tf/backend.js';
import { loadModel } from '../dist/stages/tf/models.js';
import { train } from '../dist/stages/tf/train-loop.js';
import { sgdRecipeOptions } from './sgd-recipe.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const threads = arg('--threads', os.availableParallelism());
const size = arg('--size', 128);
const batchSize = arg('--batch', 32);
const steps = arg('--steps', 5);

const { detail } = await selectBackend('wasm', threads);
// Pixels in [0, 1) from podium's own PRNG (throughput does not depend on them).
const rng = new Rng(12345);
const x = Float32Array.from({ length: batchSize * size * size * 3 }, () => rng.next());
const batch = { x, y: Int32Array.from({ length: batchSize }, (_, i) => i % 6), n: batchSize };
const model = await loadModel({ model: 'mobilenet_v2', inputSize: size, numClasses: 6, seed: 0 });
const options = (n) =>
  sgdRecipeOptions({ epochs: 1, batchSize, numTrain: n * batchSize, lr: 0.01, seed: 0, batchSource: () => batch });
await train(model, options(2));
const { history } = await train(model, options(steps));
const load = os
  .loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
console.log(
  `train ${size} px, batch ${batchSize}, ${detail}: ${history[0].imagesPerSecond.toFixed(2)} img/s (${steps} steps in ${history[0].seconds.toFixed(1)} s; load ${load})`,
);
