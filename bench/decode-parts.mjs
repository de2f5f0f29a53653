// Where the decode stage's CPU goes besides the JPEG decoder (bench/decode-cost.mjs has that):
// CPU time per image, one image at a time, of
//   - podium's WebAssembly resize (stages/data/resize.ts): intel6's 150×150 → 256×256 upscale,
//     and 1024×768 → 341×256 (box shrink + bilinear), beside OpenCV's cv2.resize INTER_LINEAR
//     (INTER_AREA for the downscale) on the same sizes (Debian's python3-opencv, bench-only;
//     skipped when missing) and sharp resizing the same raw pixels;
//   - the cache: hashing and durably storing one 256×256 blob (196 kB) in a fresh LMDB store
//     (queueBlob, then flush), against hashing alone.
// CPU time (user + system, all threads), so a busy machine inflates the figures less.
//   npm run build && node bench/decode-parts.mjs
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';

import sharp from 'sharp';

import { intel6TrainFiles } from './intel6.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const { resizeU8 } = await import(join(ROOT, 'dist', 'stages', 'data', 'resize.js'));
const { LmdbStore } = await import(join(ROOT, 'dist', 'cache', 'lmdb-store.js'));
const { sha256 } = await import(join(ROOT, 'dist', 'cache', 'canonical.js'));
sharp.cache(false);
sharp.concurrency(1);

/** CPU ms per call of fn over `n` calls, after `warm` untimed ones. */
async function cpuPer(n, fn, warm = 10) {
  for (let i = 0; i < warm; i++) await fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}

const files = intel6TrainFiles(300);
const small = await Promise.all(files.map((f) => sharp(f).raw().toBuffer()));
const large = await Promise.all(
  files.slice(0, 60).map((f) => sharp(f).resize(1024, 768, { fit: 'fill' }).raw().toBuffer()),
);
console.log(`load ${os.loadavg()[0].toFixed(2)}; CPU ms per image`);

const up = await cpuPer(small.length, (i) => resizeU8(small[i % small.length], 150, 150, 256, 256));
const down = await cpuPer(large.length, (i) => resizeU8(large[i % large.length], 1024, 768, 341, 256));
const sharpDown = await cpuPer(large.length, (i) =>
  sharp(large[i % large.length], { raw: { width: 1024, height: 768, channels: 3 } })
    .resize(341, 256, { kernel: 'linear' })
    .raw()
    .toBuffer(),
);

const PY = String.raw`
import time, numpy as np, cv2
cv2.setNumThreads(1)
rng = np.random.default_rng(0)
small = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8); large = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
def per(n, f):
    for _ in range(10): f()
    t = time.process_time()
    for _ in range(n): f()
    return (time.process_time() - t) * 1000 / n
print(per(300, lambda: cv2.resize(small, (256, 256), interpolation=cv2.INTER_LINEAR)), per(60, lambda: cv2.resize(large, (341, 256), interpolation=cv2.INTER_AREA)))
`;
const r = spawnSync('/usr/bin/python3', ['-c', PY], { encoding: 'utf8' });
const [cvUp, cvDown] = r.status === 0 ? r.stdout.trim().split(' ').map(Number) : [];
const ref = (v, x) =>
  v === undefined
    ? '(OpenCV skipped: /usr/bin/python3 with cv2 not available)'
    : `OpenCV ${v.toFixed(3)} ms, time podium/OpenCV ${(x / v).toFixed(2)}×`;
console.log(`  resize 150×150 → 256×256 (wasm bilinear)        ${up.toFixed(3)} ms   ${ref(cvUp, up)}`);
console.log(
  `  resize 1024×768 → 341×256 (wasm box + bilinear) ${down.toFixed(3)} ms   ${ref(cvDown, down)}; sharp from raw ${sharpDown.toFixed(3)} ms`,
);

const dir = mkdtempSync(join(os.tmpdir(), 'podium-bench-parts-'));
try {
  const blobs = Array.from({ length: 1000 }, (_, i) => {
    const b = Buffer.alloc(12 + 256 * 256 * 3, i & 255);
    b.writeUInt32LE(i, 0);
    return b;
  });
  const hashOnly = await cpuPer(blobs.length, (i) => sha256(blobs[i]), 0);
  const store = new LmdbStore(join(dir, 'cache'));
  const c0 = process.cpuUsage();
  for (const b of blobs) store.queueBlob(b);
  await store.flush();
  const c = process.cpuUsage(c0);
  await store.close();
  const stored = (c.user + c.system) / 1000 / blobs.length;
  console.log(
    `  cache: hash one 196 kB blob ${hashOnly.toFixed(3)} ms; hash + store it durably in LMDB ${stored.toFixed(3)} ms (the write: ${(stored - hashOnly).toFixed(3)} ms)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
