// bench/predict: multi-crop prediction throughput of MobileNetV2 (nsfwjs weights) on the
// tfjs 'wasm' backend, through the same predictCrops the multicrop-predict stage uses (crops cut
// from raw RGB images, batched), beside the inference reference of the training issue.
//
//   npm run build && node bench/predict.mjs [images]     (default 16 images, ~1 min)
//
// Prints images × crops per second for 1 crop and 10 crops at scale 256 (model input 224).
import os from 'node:os';
import { selectBackend } from '../dist/stages/tf/backend.js';
import { loadModel } from '../dist/stages/tf/models.js';
import { predictCrops } from '../dist/stages/multicrop-predict.js';
import { foldedPredictor } from '../dist/stages/tf/inference.js';

const REFERENCE = { value: 31.2, source: 'PyTorch 1.13 CPU, 2 threads, MobileNetV2 inference at 224' };
const n = Number(process.argv[2] ?? 16);
const { tf, detail } = await selectBackend('wasm');
// As the stage predicts: batch normalisation folded into the convolutions (tf/inference.ts).
const model = foldedPredictor(tf, await loadModel({ model: 'mobilenet_v2', inputSize: 224, numClasses: 6, seed: 1 }));
// Deterministic textured 256×320 images (prediction cost does not depend on content).
const images = Array.from({ length: n }, (_, k) => {
  const data = new Uint8Array(256 * 320 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + k * 17) & 255;
  return { width: 320, height: 256, data };
});
console.log(`backend ${detail}; load ${os.loadavg()[0].toFixed(2)}; ${n} images`);
await predictCrops(tf, model, images.slice(0, 2), { size: 224, scales: [256], nested: 1, full: false, batchSize: 32 }); // warm-up
for (const crops of [1, 10]) {
  const t = performance.now();
  await predictCrops(tf, model, images, { size: 224, scales: [256], nested: crops, full: false, batchSize: 32 });
  const s = (performance.now() - t) / 1000;
  const rate = (n * crops) / s;
  console.log(`${crops} crop${crops > 1 ? 's' : ''} at scale 256: ${rate.toFixed(1)} crops/s (${(n / s).toFixed(2)} images/s); reference ${REFERENCE.value} img/s (${REFERENCE.source}): ${(rate / REFERENCE.value).toFixed(2)}×`);
}
console.log(`load after ${os.loadavg()[0].toFixed(2)}`);
