// CPU time per image of the JPEG decoders alone (no resize, no cache), one image at a time, on
// 640 intel6 training images (150×150) read into memory first: libjpeg-turbo through
// @julusian/jpeg-turbo (the decode stage's fast path, decoding into one reused buffer), sharp
// as the decode stage configures it for everything else (raw RGB out, operation cache off,
// concurrency 1), and PIL and OpenCV from
// Debian (bench-only: apt-get install -y python3-opencv python3-pil; skipped when missing).
// CPU time (user + system, all threads) rather than wall time, so a busy machine inflates the
// figures less. See docs/performance.md.
//   node bench/decode-cost.mjs
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';

import { createRequire } from 'node:module';

import sharp from 'sharp';

const ROOT = resolve(import.meta.dirname, '..', '..', 'shared', 'datasets', 'intel6', 'train');
const files = readdirSync(ROOT).sort().flatMap((c) => readdirSync(join(ROOT, c)).sort().map((f) => join(ROOT, c, f))).slice(0, 640);
const buffers = files.map((f) => readFileSync(f));
sharp.cache(false);
sharp.concurrency(1);
console.log(`${buffers.length} JPEGs from ${ROOT}; load ${os.loadavg()[0].toFixed(2)}`);

const jpg = createRequire(import.meta.url)('@julusian/jpeg-turbo');
const into = Buffer.alloc(4096 * 4096 * 3);
for (let i = 0; i < 20; i++) jpg.decompressSync(buffers[i], into, { format: jpg.FORMAT_RGB });
const t0 = process.cpuUsage();
for (const b of buffers) jpg.decompressSync(b, into, { format: jpg.FORMAT_RGB });
const t = process.cpuUsage(t0);
console.log(`  libjpeg-turbo (@julusian/jpeg-turbo)   ${((t.user + t.system) / 1000 / buffers.length).toFixed(3)} ms CPU per image`);

for (let i = 0; i < 20; i++) await sharp(buffers[i]).raw().toBuffer();
const c0 = process.cpuUsage();
for (const b of buffers) await sharp(b, { sequentialRead: true }).raw().toBuffer();
const c = process.cpuUsage(c0);
console.log(`  sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})   ${((c.user + c.system) / 1000 / buffers.length).toFixed(3)} ms CPU per image`);

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
