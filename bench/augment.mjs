// Throughput of training-time augmentation (stages/data/augment/), single thread.
//
// The loader must augment + batch at ≥ 5× the rate CPU training consumes images (≈15–60 img/s),
// so 300 img/s per core at crop 224, level 3, is the floor. Each configuration is timed through
// augmentBatch (batch 32, the loader's real entry point) twice: allocating a new batch array each
// call (the default), and filling a reused one (augmentBatch's optional `out`). Eval centre crop is
// timed through centerCrop. Rates are per wall-clock second and per CPU-second of this process; on
// a shared machine the wall rate also counts time the OS gave to other processes, so the ratio to
// the floor is taken from the CPU-time rate (throughput of one busy core).
//
//   npx tsc -p tsconfig.json && node bench/augment.mjs [--seconds 2] [--preview [/tmp/augment-preview.png]]
//
// --preview also writes a level-3 contact sheet of synthetic structured images (sharp is used only
// for PNG encoding there; it is not on the augmentation path).
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { augmentBatch, centerCrop, contactSheet, policyForLevel } from '../dist/stages/data/augment/index.js';

const FLOOR = 300; // img/s
const BATCH = 32;

const args = process.argv.slice(2);
const secIdx = args.indexOf('--seconds');
const seconds = secIdx >= 0 ? Number(args[secIdx + 1]) : 2;
const previewIdx = args.indexOf('--preview');
const previewPath =
  previewIdx >= 0 && args[previewIdx + 1] && !args[previewIdx + 1].startsWith('--')
    ? args[previewIdx + 1]
    : '/tmp/augment-preview.png';

/** Photo-like synthetic source: smooth colour gradients plus noise, so no branch is trivially predictable. */
function syntheticImage(w, h, salt) {
  const data = new Uint8Array(w * h * 3);
  let s = (0x9e3779b9 ^ salt) >>> 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const n = (s >>> 24) - 128;
      const i = (y * w + x) * 3;
      data[i] = Math.max(0, Math.min(255, ((x * 255) / w + n * 0.2) | 0));
      data[i + 1] = Math.max(0, Math.min(255, ((y * 255) / h + n * 0.2) | 0));
      data[i + 2] = Math.max(0, Math.min(255, (((x + y) * 127) / (w + h) + 64 + n * 0.2) | 0));
    }
  }
  return { data, width: w, height: h };
}

/** Structured preview source: gradient background, grid lines, a coloured disc and an arrow-ish mark. */
function gridImage(w, h, hueShift) {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      let r = (x * 255) / w;
      let g = (y * 255) / h;
      let b = 255 - ((x + y) * 255) / (w + h);
      if (hueShift) [r, g, b] = [b, r, g];
      if (x % 32 < 2 || y % 32 < 2) r = g = b = 0; // grid
      const dx = x - w * 0.3;
      const dy = y - h * 0.3;
      if (dx * dx + dy * dy < (w * 0.12) ** 2) [r, g, b] = [230, 30, 30]; // red disc, top-left
      if (y > h * 0.6 && y < h * 0.66 && x > w * 0.45 && x < w * 0.9) [r, g, b] = [255, 255, 255]; // white bar
      if (x > w * 0.8 && x < w * 0.86 && y > h * 0.5 && y < h * 0.66) [r, g, b] = [255, 255, 255]; // makes an "L"
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
  return { data, width: w, height: h };
}

/**
 * Times `run(batchNo)` (which processes BATCH images) for `seconds`, in 3 trials, and returns the
 * best trial's rates: per wall-clock second and per CPU-second of this process. The machine may be
 * shared, so the CPU-time rate is the fairer "one core" figure; both are printed.
 */
function measure(run) {
  for (let i = 0; i < 5; i++) run(i); // warm-up: time optimised code, not the interpreter
  let wall = 0;
  let cpu = 0;
  let batchNo = 100;
  for (let trial = 0; trial < 3; trial++) {
    let n = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < (seconds * 1000) / 3) {
      run(batchNo++);
      n += BATCH;
      t = performance.now();
    }
    const used = process.cpuUsage(c0);
    wall = Math.max(wall, n / ((t - t0) / 1000));
    cpu = Math.max(cpu, n / ((used.user + used.system) / 1e6));
  }
  return { wall, cpu };
}

const fmt = ({ wall, cpu }) =>
  `${wall.toFixed(0).padStart(6)} / ${cpu.toFixed(0).padStart(6)} img/s ${(cpu / FLOOR).toFixed(1).padStart(5)}×`;

/** Two rows' worth in one line: augmentBatch allocating each batch, and filling a reused buffer. */
function bench(label, imgs, policy) {
  const indices = Array.from({ length: BATCH }, (_, k) => k);
  const batchImgs = indices.map((k) => imgs[k % imgs.length]);
  const reused = new Float32Array(BATCH * policy.crop * policy.crop * 3);
  // Each batch is a new epoch so crops, flips and colour offsets vary as in training.
  const fresh = measure((epoch) => augmentBatch(batchImgs, indices, policy, 1, epoch));
  const reuse = measure((epoch) => augmentBatch(batchImgs, indices, policy, 1, epoch, reused));
  console.log(`${label.padEnd(36)} ${fmt(fresh)}   ${fmt(reuse)}`);
}

function benchEval(label, imgs, size) {
  const out = new Float32Array(BATCH * size * size * 3);
  const r = measure(() => {
    for (let i = 0; i < BATCH; i++) centerCrop(imgs[i % imgs.length], size, out, i * size * size * 3);
  });
  console.log(`${label.padEnd(36)} ${' '.repeat(fmt(r).length)}   ${fmt(r)}`);
}

console.log(
  `augment bench: node ${process.version}, batch ${BATCH}, one thread, best of 3 trials, ${seconds}s per measurement`,
);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} (other processes inflate wall times, not CPU times)`,
);
console.log(`rates are wall / cpu-time img/s; the ratio is the cpu-time rate / ${FLOOR} img/s (the floor)`);
console.log(`${''.padEnd(36)} ${'new Float32Array per batch'.padEnd(32)}   reused batch buffer`);
for (const [src, crop] of [
  [256, 224],
  [146, 128],
]) {
  const imgs = Array.from({ length: 8 }, (_, k) => syntheticImage(src, src, k));
  for (const level of [1, 2, 3]) {
    bench(`crop ${crop} from ${src}×${src}, level ${level}`, imgs, policyForLevel(level, crop));
  }
  bench(
    `crop ${crop} from ${src}×${src}, level 3 + RRC`,
    imgs,
    policyForLevel(3, crop, { randomResizedCrop: { area: [0.08, 1], ratio: [3 / 4, 4 / 3] } }),
  );
  benchEval(`crop ${crop} from ${src}×${src}, eval centre`, imgs, crop);
}

if (previewIdx >= 0) {
  const { default: sharp } = await import('sharp');
  const srcs = [gridImage(256, 256, false), gridImage(320, 240, true), gridImage(200, 280, false)];
  const rows = [
    ...srcs.map((img) => ({ img, policy: policyForLevel(3, 224) })),
    { img: srcs[0], policy: policyForLevel(3, 224, { randomResizedCrop: { area: [0.08, 1], ratio: [3 / 4, 4 / 3] } }) },
  ];
  // One sheet per row policy, stacked: rows 0–2 are level 3, row 3 is level 3 + random-resized-crop.
  const sheets = rows.map(({ img, policy }, r) => contactSheet([img], policy, 7 + r, 6));
  const width = sheets[0].width;
  const gap = 4;
  const height = sheets.reduce((acc, s) => acc + s.height, 0) + gap * (sheets.length - 1);
  const data = new Uint8Array(width * height * 3).fill(255);
  let y = 0;
  for (const s of sheets) {
    data.set(s.data, y * width * 3);
    y += s.height + gap;
  }
  await sharp(Buffer.from(data.buffer), { raw: { width, height, channels: 3 } })
    .png()
    .toFile(previewPath);
  console.log(`preview: ${previewPath} (${width}×${height})`);
}
