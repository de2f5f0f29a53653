// bench/predict: multi-crop prediction throughput of MobileNetV2 (nsfwjs weights) on the
// tfjs 'wasm' backend, through the same predictCrops the multicrop-predict stage uses (crops cut
// from raw RGB images, batched), beside PyTorch's MobileNetV2 inference at 224 px measured in
// the same run (bench/torch_ref.py; the faster of NCHW and channels_last; skipped with a message
// where Debian's python3-torch is absent).
//
//   npm run build && node bench/predict.mjs [images]     (default 16 images, ~1 min)
//
// Prints images × crops per second for 1 crop and 10 crops at scale 256 (model input 224).
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { selectBackend } from '../dist/stages/tf/backend.js';
import { loadModel } from '../dist/stages/tf/models.js';
import { predictCrops } from '../dist/stages/tf/predict.js';
import { foldedPredictor } from '../dist/stages/tf/inference.js';

const REFERENCE = (() => {
  const threads = os.availableParallelism();
  try {
    const out = execFileSync(
      '/usr/bin/python3',
      [new URL('./torch_ref.py', import.meta.url).pathname, '--threads', String(threads), '--only', 'infer224'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const r = JSON.parse(out.trim().split('\n').at(-1));
    const best = r.infer224.channels_last >= r.infer224.nchw ? 'channels_last' : 'nchw';
    return {
      value: r.infer224[best],
      source: `PyTorch ${r.torch} ${best} inference at 224, ${threads} threads, this run (NCHW ${r.infer224.nchw}, channels_last ${r.infer224.channels_last})`,
    };
  } catch (e) {
    console.log(
      `PyTorch reference skipped: ${String(e.stderr || e.message)
        .trim()
        .split('\n')
        .at(-1)}`,
    );
    return undefined;
  }
})();
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
  const vs = REFERENCE
    ? `; reference ${REFERENCE.value} img/s (${REFERENCE.source}): ${(rate / REFERENCE.value).toFixed(2)}×`
    : '';
  console.log(
    `${crops} crop${crops > 1 ? 's' : ''} at scale 256: ${rate.toFixed(1)} crops/s (${(n / s).toFixed(2)} images/s)${vs}`,
  );
}
console.log(`load after ${os.loadavg()[0].toFixed(2)}`);
