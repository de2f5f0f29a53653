// bench/decode: images/s of the decode stage with its default settings (decode + resize to short
// side 256, or the one given; 2 worker threads) against the same-work OpenCV reference, measured
// in the same run, alternately, `--repeat` times (default 3), each round's ratio and the median.
// The reference does what the stage does: 2 processes decode (cv2.imread) and resize
// (INTER_LINEAR) each image to the short side, hash its pixels (sha256) and send them to the
// parent, which stores them all in LMDB (python3-lmdb) in one durable transaction. Its pool is
// started and warmed before timing; the stage's figure includes its worker start-up.
// Then, once per set: the stage with decoder "sharp" (everything through sharp) and "fast", how
// many blobs the default and "fast" make that equal "sharp"'s, the stage's decode + resize alone
// on its 2 worker threads, and OpenCV and PIL decode + resize alone.
//   (a) ../shared/datasets/intel6 read in place: 3000 JPEGs, 150×150
//   (b) 300 of them re-encoded at 1024×768, quality 90 (made here; skipped with --intel6-only)
// References need Debian's python3-opencv, python3-lmdb and python3-pil (bench-only:
// apt-get install -y python3-opencv python3-lmdb python3-pil); each is skipped when missing.
// Usage: npm run build && node bench/decode.mjs [shortSide, default 256] [--repeat N] [--intel6-only]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'runner', 'cli.js');
const INTEL6 = resolve(ROOT, '..', 'shared', 'datasets', 'intel6');
const args = process.argv.slice(2);
const flag = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : (args.splice(at, name.startsWith('--repeat') ? 2 : 1)[1] ?? true);
};
const REPEAT = Number(flag('--repeat') ?? 3);
const INTEL6_ONLY = flag('--intel6-only') !== undefined;
const SHORT_SIDE = Number(args[0] ?? 256);
const { decodeAll } = await import(join(ROOT, 'dist', 'stages', 'data', 'decode-workers.js'));
const { sha256 } = await import(join(ROOT, 'dist', 'cache', 'canonical.js'));
const { LmdbStore } = await import(join(ROOT, 'dist', 'cache', 'lmdb-store.js'));
const { decode: decodeKind } = await import(join(ROOT, 'dist', 'stages', 'decode.js'));
const DEFAULT_DECODER = decodeKind.params.properties.decoder.default;
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
 * The decode stage through the real CLI (decoder undefined: the default); img/s over the stage's
 * whole duration (worker start-up included). The project stays (its `dir`) for samePixels; the
 * caller removes it.
 */
function podium(root, label, decoder) {
  const dir = mkdtempSync(join(tmpdir(), 'podium-bench-decode-'));
  writeFileSync(
    join(dir, 'p.json'),
    JSON.stringify({
      name: 'bench-decode',
      stages: {
        images: { uses: 'dataset', params: { format: 'imagefolder', root } },
        decoded: {
          uses: 'decode',
          inputs: { dataset: 'images' },
          params: { shortSide: SHORT_SIDE, ...(decoder && { decoder }) },
        },
      },
    }),
  );
  execFileSync('node', [CLI, 'run', 'p.json', '--only', 'images'], { cwd: dir, stdio: 'ignore' });
  execFileSync('node', [CLI, 'run', 'p.json'], { cwd: dir, stdio: 'ignore' });
  const show = JSON.parse(execFileSync('node', [CLI, 'show', 'p.json', 'decoded', '--json'], { cwd: dir }).toString());
  const n = show.record.metrics.images;
  const line = show.record.logTail.find((l) => l.includes('img/s decoded')) ?? '';
  return {
    label,
    dir,
    images: show.record.outputs.images,
    n,
    stageSeconds: show.record.durationMs / 1000,
    rate: n / (show.record.durationMs / 1000),
    inner: line,
  };
}

/** How many images two stage runs decoded to the same blob, and how far apart the others are. */
async function samePixels(a, b) {
  const [sa, sb] = [a, b].map((r) => new LmdbStore(join(r.dir, '.podium', 'cache')));
  try {
    const [ra, rb] = [
      [sa, a],
      [sb, b],
    ].map(([s, r]) => Object.values(JSON.parse(s.getBlob(r.images).toString()).splits).flat());
    let same = 0,
      sum = 0,
      n = 0,
      max = 0;
    ra.forEach((row, i) => {
      if (row.blob === rb[i].blob) {
        same++;
        return;
      }
      const x = decodeDecoded(sa.getBlob(row.blob)).data;
      const y = decodeDecoded(sb.getBlob(rb[i].blob)).data;
      for (let k = 0; k < x.length; k++) {
        const d = Math.abs(x[k] - y[k]);
        sum += d;
        n++;
        if (d > max) max = d;
      }
    });
    return `${same} of ${ra.length} blobs byte-identical${n ? `; the others ${(sum / n).toFixed(2)} grey levels apart on average, max ${max}` : ''}`;
  } finally {
    await sa.close();
    await sb.close();
  }
}

/** The stage's decode + resize alone: its worker pool (start-up included), no cache. */
async function podiumDecodeOnly(files) {
  const tasks = files.map((path) => ({ path, sha256: sha256(readFileSync(path)) }));
  const params = {
    shortSide: SHORT_SIDE,
    size: null,
    fit: 'cover',
    centerCrop: null,
    kernel: 'linear',
    maxPixels: 64e6,
    decoder: DEFAULT_DECODER,
  };
  const t = performance.now();
  let n = 0;
  await decodeAll(
    tasks,
    params,
    (_, image) => {
      if (image) n++;
    },
    { threads: 2 },
  );
  return n / ((performance.now() - t) / 1000);
}

const PY = String.raw`
import sys, time, json, hashlib, struct, tempfile, shutil
from multiprocessing import Pool
files = json.load(open(sys.argv[1])); which = sys.argv[2]; S = ${SHORT_SIDE}
def short_side(w, h):
    return (S, round(h * S / w)) if w <= h else (round(w * S / h), S)
def cv(path, reduced=False):
    import cv2
    cv2.setNumThreads(1)
    img = cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2 if reduced else cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    return cv2.cvtColor(cv2.resize(img, short_side(w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
def cv_shape(path): return cv(path).shape
def cv_stored(path):
    # What the decode stage stores: a 12-byte header and the RGB bytes, keyed by their sha256.
    img = cv(path)
    blob = struct.pack('<III', 0x42475250, img.shape[1], img.shape[0]) + img.tobytes()
    return hashlib.sha256(blob).hexdigest().encode(), blob
def pil(path, draft=False):
    from PIL import Image
    im = Image.open(path)
    if draft: im.draft('RGB', short_side(*im.size))
    im = im.convert('RGB')
    return im.resize(short_side(*im.size), Image.BILINEAR).size
# Module-level functions: multiprocessing pickles what it sends to the pool, and lambdas cannot be
# pickled (the reduced/draft references used to fail silently that way).
def cv_reduced(path): return cv(path, True).shape
def pil_draft(path): return pil(path, True)
fn = {'opencv-stored': cv_stored, 'opencv': cv_shape, 'opencv-reduced': cv_reduced, 'pil': pil, 'pil-draft': pil_draft}[which]
with Pool(2) as pool:
    pool.map(fn, files[:20])
    if which == 'opencv-stored':
        import lmdb
        where = tempfile.mkdtemp(prefix='podium-bench-ref-')
        try:
            t = time.perf_counter()
            # sync (the default): the commit is durable, as the stage's.
            env = lmdb.open(where, map_size=1 << 36)
            with env.begin(write=True) as txn:
                for key, blob in pool.imap(fn, files, chunksize=16): txn.put(key, blob)
            env.close()
            dt = time.perf_counter() - t
        finally: shutil.rmtree(where)
    else:
        t = time.perf_counter(); pool.map(fn, files, chunksize=16); dt = time.perf_counter() - t
print(len(files) / dt)
`;

function reference(files, which) {
  const list = join(tmpdir(), `podium-bench-files-${process.pid}.json`);
  writeFileSync(list, JSON.stringify(files));
  const r = spawnSync('/usr/bin/python3', ['-c', PY, list, which], { encoding: 'utf8' });
  rmSync(list, { force: true });
  if (r.status !== 0)
    console.log(`    (${which} skipped: ${(r.stderr || 'python3 failed').trim().split('\n').at(-1)})`);
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function makeLarge(files, dir) {
  for (const [i, f] of files.entries()) {
    const cls = f.split('/').at(-2);
    mkdirSync(join(dir, 'train', cls), { recursive: true });
    await sharp(f)
      .resize(1024, 768, { fit: 'fill' })
      .jpeg({ quality: 90 })
      .toFile(join(dir, 'train', cls, `${i}.jpg`));
  }
  return listImages(dir);
}

if (!existsSync(INTEL6)) {
  console.log(`skipped: ${INTEL6} not found`);
  process.exit(0);
}
const small = listImages(INTEL6);
const largeDir = mkdtempSync(join(tmpdir(), 'podium-bench-large-'));
const large = INTEL6_ONLY ? [] : await makeLarge(small.filter((_, i) => i % 10 === 0).slice(0, 300), largeDir);
try {
  const sets = [
    ['(a) intel6 150×150', INTEL6, small, ['opencv', 'pil']],
    ['(b) 1024×768 q90', largeDir, large, ['pil-draft', 'opencv-reduced', 'opencv', 'pil']],
  ];
  for (const [name, root, files, refs] of INTEL6_ONLY ? sets.slice(0, 1) : sets) {
    console.log(
      `${name}, short side ${SHORT_SIDE}: the decode stage with default settings against OpenCV doing the same work (decode + resize, sha256, one durable LMDB transaction), 2 cores each, alternately`,
    );
    const ratios = [];
    const refRates = [];
    for (let round = 1; round <= REPEAT; round++) {
      const before = load();
      const p = podium(root, name, undefined);
      rmSync(p.dir, { recursive: true, force: true });
      const ref = reference(files, 'opencv-stored');
      if (ref === undefined) {
        console.log(
          `    round ${round}: podium ${p.rate.toFixed(0)} img/s (${p.n} images in ${p.stageSeconds.toFixed(2)} s; stage log: ${p.inner})`,
        );
        continue;
      }
      ratios.push(p.rate / ref);
      refRates.push(ref);
      console.log(
        `    round ${round}: podium ${p.rate.toFixed(0)} img/s, OpenCV same work ${ref.toFixed(0)} img/s: ${(p.rate / ref).toFixed(2)}×   (load before ${before}, after ${load()}; stage log: ${p.inner})`,
      );
    }
    if (ratios.length)
      console.log(`    median of ${ratios.length}: podium default / OpenCV same work = ${median(ratios).toFixed(2)}×`);
    const def = podium(root, name, undefined);
    const viaSharp = podium(root, name, 'sharp');
    const fast = podium(root, name, 'fast');
    // Against the median of the rounds' reference: measured a little earlier, so a rougher ratio.
    const against = (rate) =>
      refRates.length ? ` (${(rate / median(refRates)).toFixed(2)}× the rounds' median OpenCV same work)` : '';
    console.log(
      `    decoder "sharp" (everything through sharp) ${viaSharp.rate.toFixed(0)} img/s${against(viaSharp.rate)}; "fast" ${fast.rate.toFixed(0)} img/s${against(fast.rate)} (stage log: ${fast.inner})`,
    );
    console.log(`    default against "sharp": ${await samePixels(def, viaSharp)}`);
    console.log(`    "fast" against "sharp": ${await samePixels(fast, viaSharp)}`);
    for (const r of [def, viaSharp, fast]) rmSync(r.dir, { recursive: true, force: true });
    const decodeOnly = await podiumDecodeOnly(files);
    console.log(
      `    podium decode + resize only (default decoder, 2 worker threads, no cache) ${decodeOnly.toFixed(0)} img/s`,
    );
    for (const r of refs) {
      const v = reference(files, r);
      if (v !== undefined)
        console.log(
          `    ${r.padEnd(15)} decode + resize only ${v.toFixed(0)} img/s   podium decode-only / ${r} = ${(decodeOnly / v).toFixed(2)}×`,
        );
    }
    console.log(`    load ${load()}`);
  }
} finally {
  rmSync(largeDir, { recursive: true, force: true });
}
