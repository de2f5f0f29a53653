// Parity (issue 17.6): podium's decoded pixels of intel6's val and test splits, laid out as
// ../shared/torchref's loader lays out PIL's (class folders sorted, files sorted; shorter side S,
// the centred S×S square, NHWC uint8), for bench/parity_crosseval.py to score PyTorch's trained
// models on. Uses the decode stage's own code (stages/data/decode-image.ts) with its defaults.
//
//   node bench/parity-pixels.mjs [--dataset ../shared/datasets/intel6] [--size 146] [--out DIR]
//
// Writes DIR/podium_{val,test}_S.u8 (default DIR: /tmp/podium-parity).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { decodeImage } from '../dist/stages/data/decode-image.js';
import { decodeDecoded } from '../dist/stages/data/decoded.js';

const option = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const root = resolve(option('--dataset', new URL('../../shared/datasets/intel6', import.meta.url).pathname));
const S = Number(option('--size', '146'));
const outDir = resolve(option('--out', '/tmp/podium-parity'));
const params = {
  shortSide: S,
  size: null,
  fit: 'cover',
  centerCrop: null,
  kernel: 'linear',
  maxPixels: 64e6,
  decoder: 'exact',
};
const classes = readdirSync(join(root, 'train')).sort();
mkdirSync(outDir, { recursive: true });
for (const split of ['val', 'test']) {
  const files = classes.flatMap((c) =>
    readdirSync(join(root, split, c))
      .filter((f) => f.endsWith('.jpg'))
      .map((f) => join(root, split, c, f))
      .sort(),
  );
  const out = new Uint8Array(files.length * S * S * 3);
  for (const [k, f] of files.entries()) {
    const bytes = readFileSync(f);
    const { blob } = await decodeImage(f, createHash('sha256').update(bytes).digest('hex'), params);
    const { data, width, height } = decodeDecoded(blob);
    const [l, t] = [(width - S) >> 1, (height - S) >> 1];
    for (let y = 0; y < S; y++)
      out.set(data.subarray(((t + y) * width + l) * 3, ((t + y) * width + l + S) * 3), (k * S + y) * S * 3);
  }
  const file = join(outDir, `podium_${split}_${S}.u8`);
  writeFileSync(file, out);
  console.log(`${split}: ${files.length} images → ${file}`);
}
