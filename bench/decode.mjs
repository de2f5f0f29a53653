// bench/decode: images/s of the decode stage (decode + resize to short side 256, or the one given), 2 cores, with
// decoder "fast" (libjpeg-turbo for plain JPEGs, the figure compared) and "sharp" (the default),
// beside OpenCV and PIL doing the same work in 2 processes, measured in the same run. Two podium
// figures: the whole stage through the CLI (which also hashes every blob and writes it durably
// to the LMDB cache), and its decode + resize alone on the same 2 worker threads (what the
// references do; the input hashes the dataset stage supplies are computed before timing).
//   (a) ../shared/datasets/intel6: 3000 JPEGs, 150×150
//   (b) 300 of them re-encoded at 1024×768, quality 90 (made here)
// References need Debian's python3-opencv and python3-pil (bench-only: apt-get install -y
// python3-opencv python3-pil); they are skipped when missing.
// It also says how many images the two decoders turned into the same blob.
// Usage: npm run build && node bench/decode.mjs [shortSide, default 256]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'runner', 'cli.js');
const INTEL6 = resolve(ROOT, '..', 'shared', 'datasets', 'intel6');
const SHORT_SIDE = Number(process.argv[2] ?? 256);
const { decodeAll } = await import(join(ROOT, 'dist', 'stages', 'data', 'decode-workers.js'));
const { sha256 } = await import(join(ROOT, 'dist', 'cache', 'canonical.js'));
const { LmdbStore } = await import(join(ROOT, 'dist', 'cache', 'lmdb-store.js'));
const { decodeDecoded } = await import(join(ROOT, 'dist', 'stages', 'data', 'decoded.js'));

function listImages(root) {
  const out = [];
  for (const split of readdirSync(root)) {
    const sd = join(root, split);
    if (!existsSync(sd) || split.endsWith('.csv') || split.endsWith('.txt')) continue;
    for (const cls of readdirSync(sd)) for (const f of readdirSync(join(sd, cls))) out.push(join(sd, cls, f));
  }
  return out;
}

/**
 * The decode stage through the real CLI; img/s over the stage's whole duration (worker start-up
 * included). The project stays (its `dir`) for samePixels; the caller removes it.
 */
function podium(root, label, decoder) {
  const dir = mkdtempSync(join(tmpdir(), 'podium-bench-decode-'));
  writeFileSync(join(dir, 'p.json'), JSON.stringify({
    name: 'bench-decode',
    stages: {
      images: { uses: 'dataset', params: { format: 'imagefolder', root } },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: SHORT_SIDE, decoder } },
    },
  }));
  execFileSync('node', [CLI, 'run', 'p.json', '--only', 'images'], { cwd: dir, stdio: 'ignore' });
  execFileSync('node', [CLI, 'run', 'p.json'], { cwd: dir, stdio: 'ignore' });
  const show = JSON.parse(execFileSync('node', [CLI, 'show', 'p.json', 'decoded', '--json'], { cwd: dir }).toString());
  const n = show.record.metrics.images;
  const line = show.record.logTail.find((l) => l.includes('img/s decoded')) ?? '';
  return { label, dir, images: show.record.outputs.images, n, stageSeconds: show.record.durationMs / 1000, rate: n / (show.record.durationMs / 1000), inner: line };
}

/** How many images two stage runs decoded to the same blob, and how far apart the others are. */
async function samePixels(a, b) {
  const [sa, sb] = [a, b].map((r) => new LmdbStore(join(r.dir, '.podium', 'cache')));
  try {
    const [ra, rb] = [[sa, a], [sb, b]].map(([s, r]) => Object.values(JSON.parse(s.getBlob(r.images).toString()).splits).flat());
    let same = 0, sum = 0, n = 0, max = 0;
    ra.forEach((row, i) => {
      if (row.blob === rb[i].blob) { same++; return; }
      const x = decodeDecoded(sa.getBlob(row.blob)).data;
      const y = decodeDecoded(sb.getBlob(rb[i].blob)).data;
      for (let k = 0; k < x.length; k++) { const d = Math.abs(x[k] - y[k]); sum += d; n++; if (d > max) max = d; }
    });
    return `${same} of ${ra.length} blobs byte-identical${n ? `; the others ${(sum / n).toFixed(2)} grey levels apart on average, max ${max}` : ''}`;
  } finally { await sa.close(); await sb.close(); }
}

/** The stage's decode + resize alone: its worker pool (start-up included), no cache. */
async function podiumDecodeOnly(files) {
  const tasks = files.map((path) => ({ path, sha256: sha256(readFileSync(path)) }));
  const params = { shortSide: SHORT_SIDE, size: null, fit: 'cover', centerCrop: null, kernel: 'linear', maxPixels: 64e6, decoder: 'fast' };
  const t = performance.now();
  let n = 0;
  await decodeAll(tasks, params, (_, image) => { if (image) n++; }, { threads: 2 });
  return n / ((performance.now() - t) / 1000);
}

const PY = String.raw`
import sys, time, json
from multiprocessing import Pool
files = json.load(open(sys.argv[1])); which = sys.argv[2]; S = ${SHORT_SIDE}
def short_side(w, h):
    return (S, round(h * S / w)) if w <= h else (round(w * S / h), S)
def cv(path, reduced=False):
    import cv2
    cv2.setNumThreads(1)
    img = cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2 if reduced else cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    return cv2.cvtColor(cv2.resize(img, short_side(w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB).shape
def pil(path, draft=False):
    from PIL import Image
    im = Image.open(path)
    if draft: im.draft('RGB', short_side(*im.size))
    im = im.convert('RGB')
    return im.resize(short_side(*im.size), Image.BILINEAR).size
# Module-level functions: multiprocessing pickles what it sends to the pool, and lambdas cannot be
# pickled (the reduced/draft references used to fail silently that way).
def cv_reduced(path): return cv(path, True)
def pil_draft(path): return pil(path, True)
fn = {'opencv': cv, 'opencv-reduced': cv_reduced, 'pil': pil, 'pil-draft': pil_draft}[which]
with Pool(2) as pool:
    pool.map(fn, files[:20])
    t = time.perf_counter(); pool.map(fn, files, chunksize=16); dt = time.perf_counter() - t
print(len(files) / dt)
`;

function reference(files, which) {
  const list = join(tmpdir(), `podium-bench-files-${process.pid}.json`);
  writeFileSync(list, JSON.stringify(files));
  const r = spawnSync('/usr/bin/python3', ['-c', PY, list, which], { encoding: 'utf8' });
  rmSync(list, { force: true });
  if (r.status !== 0) console.log(`    (${which} skipped: ${(r.stderr || 'python3 failed').trim().split('\n').at(-1)})`);
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

async function makeLarge(files, dir) {
  for (const [i, f] of files.entries()) {
    const cls = f.split('/').at(-2);
    mkdirSync(join(dir, 'train', cls), { recursive: true });
    await sharp(f).resize(1024, 768, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(join(dir, 'train', cls, `${i}.jpg`));
  }
  return listImages(dir);
}

if (!existsSync(INTEL6)) { console.log(`skipped: ${INTEL6} not found`); process.exit(0); }
const small = listImages(INTEL6);
const largeDir = mkdtempSync(join(tmpdir(), 'podium-bench-large-'));
const large = await makeLarge(small.filter((_, i) => i % 10 === 0).slice(0, 300), largeDir);
try {
  for (const [name, root, files, refs] of [['(a) intel6 150×150', INTEL6, small, ['opencv', 'pil']], ['(b) 1024×768 q90', largeDir, large, ['pil-draft', 'opencv-reduced', 'opencv', 'pil']]]) {
    const p = podium(root, name, 'fast');
    const viaSharp = podium(root, name, 'sharp');
    const pixels = await samePixels(p, viaSharp);
    for (const r of [p, viaSharp]) rmSync(r.dir, { recursive: true, force: true });
    const decodeOnly = await podiumDecodeOnly(files);
    const rows = refs.map((r) => [r, reference(files, r)]).filter(([, v]) => v !== undefined);
    const best = Math.max(...rows.map(([, v]) => v));
    console.log(`${name}: podium decode stage, decoder "fast", ${p.rate.toFixed(0)} img/s (${p.n} images in ${p.stageSeconds.toFixed(2)} s incl. worker start and cache writes; stage log: ${p.inner})`);
    console.log(`    podium decode stage, decoder "sharp" (the default) ${viaSharp.rate.toFixed(0)} img/s (stage log: ${viaSharp.inner})`);
    console.log(`    fast against sharp: ${pixels}`);
    console.log(`    podium decode + resize only, decoder "fast" (2 worker threads, no cache) ${decodeOnly.toFixed(0)} img/s`);
    for (const [r, v] of rows) console.log(`    ${r.padEnd(15)} ${v.toFixed(0)} img/s   stage/${r} = ${(p.rate / v).toFixed(2)}×   decode-only/${r} = ${(decodeOnly / v).toFixed(2)}×`);
    if (rows.length) console.log(`    target (best reference) ${best.toFixed(0)} img/s: the stage is ${(p.rate / best).toFixed(2)}× of it, decode + resize alone ${(decodeOnly / best).toFixed(2)}×`);
  }
} finally { rmSync(largeDir, { recursive: true, force: true }); }
