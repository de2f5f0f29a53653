// CPU time per image of the JPEG decoders alone (no resize, no cache), one image at a time, on
// 640 intel6 training images (150×150) read into memory first: libjpeg-turbo as the decode
// stage's default path calls it (TurboJPEG 3 through koffi, accurate IDCT, decoding into one
// reused buffer), the @julusian/jpeg-turbo binding it used before (fast IDCT), sharp
// as the decode stage configures it for everything else (raw RGB out, operation cache off,
// concurrency 1), and PIL and OpenCV from
// Debian (bench-only: apt-get install -y python3-opencv python3-pil; skipped when missing).
// CPU time (user + system, all threads) rather than wall time, so a busy machine inflates the
// figures less. See docs/performance.md.
//   node bench/decode-cost.mjs
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { createRequire } from 'node:module';

import sharp from 'sharp';

import { INTEL6_TRAIN, intel6TrainFiles } from './intel6.mjs';

const { decodeJpegRgb } = await import(join(import.meta.dirname, '..', 'dist', 'stages', 'data', 'jpeg-turbo.js'));

const files = intel6TrainFiles(640);
const buffers = files.map((f) => readFileSync(f));
sharp.cache(false);
sharp.concurrency(1);
console.log(`${buffers.length} JPEGs from ${INTEL6_TRAIN}; load ${os.loadavg()[0].toFixed(2)}`);

const into = Buffer.alloc(4096 * 4096 * 3);
/** CPU ms per image of `decode` over all the buffers, after 20 to warm up. */
function cpuPerImage(decode) {
  for (let i = 0; i < 20; i++) decode(buffers[i]);
  const t0 = process.cpuUsage();
  for (const b of buffers) decode(b);
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) / 1000 / buffers.length).toFixed(3);
}
console.log(
  `  libjpeg-turbo, TurboJPEG 3 via koffi (the stage's path, accurate IDCT)   ${cpuPerImage((b) => {
    if (!decodeJpegRgb(b, into)) throw new Error('refused');
  })} ms CPU per image`,
);
const jpg = createRequire(import.meta.url)('@julusian/jpeg-turbo');
console.log(
  `  libjpeg-turbo, @julusian/jpeg-turbo binding (fast IDCT)   ${cpuPerImage((b) => jpg.decompressSync(b, into, { format: jpg.FORMAT_RGB }))} ms CPU per image`,
);

for (let i = 0; i < 20; i++) await sharp(buffers[i]).raw().toBuffer();
const c0 = process.cpuUsage();
for (const b of buffers) await sharp(b, { sequentialRead: true }).raw().toBuffer();
const c = process.cpuUsage(c0);
console.log(
  `  sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})   ${((c.user + c.system) / 1000 / buffers.length).toFixed(3)} ms CPU per image`,
);

const PY = String.raw`
import io, sys, time, json
files = json.loads(sys.stdin.read())
bufs = [open(f, 'rb').read() for f in files]
try:
    from PIL import Image
    t = time.process_time()
    for b in bufs:
        im = Image.open(io.BytesIO(b)).convert('RGB'); im.load()
    print('PIL', (time.process_time() - t) * 1000 / len(bufs))
except ImportError:
    pass
try:
    import cv2, numpy as np
    cv2.setNumThreads(1)
    t = time.process_time()
    for b in bufs:
        cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
    print('OpenCV', (time.process_time() - t) * 1000 / len(bufs))
except ImportError:
    pass
`;
const r = spawnSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify(files), encoding: 'utf8' });
if (r.status !== 0) console.log('  (references skipped: /usr/bin/python3 with PIL/OpenCV not available)');
for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
  const [name, ms] = line.split(' ');
  console.log(`  ${name.padEnd(28)} ${Number(ms).toFixed(3)} ms CPU per image`);
}
