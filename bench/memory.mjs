// Memory of finetune against the size of the dataset (issue 12.7): does the finetune worker's
// resident memory grow with the number of training images?
//
//   node bench/memory.mjs [--sizes 2000,20000] [--batches 8] [--tree DIR] [--work DIR] [--keep] [--prepare]
//
// For each size N it writes N training JPEGs at 256×256 (10 classes, an imagefolder) and decodes them with `decoder: "fast"` at short side 256,
// through the podium CLI of this checkout, in a project under --work (default /tmp/podium-membench).
// Then it runs the `finetune` stage itself (MobileNetV2 at 224 px, batch 32, level-1
// augmentation, wasm, 2 threads) in a child process on that cache, from the compiled tree --tree
// (default: this checkout; point it at a build of another commit to compare), and stops it after
// --batches training steps. The set is prepared once per size and reused by later runs (and by
// other trees) unless it is missing; --keep leaves it on disk at the end, otherwise it is removed;
// --prepare only prepares (and keeps) the sets.
//
// What is measured, sampled every 100 ms from /proc/PID/status of the child:
//   RssAnon  — anonymous resident memory: the JS heap, wasm memory, decoded copies of images.
//              This is what must not grow with N.
//   RSS      — RssAnon + RssFile + RssShmem. RssFile includes the pages of LMDB's memory map the
//              child has touched, which the kernel can drop under pressure; it grows with what was
//              read, not with what is held.
// and, from the child's own clock: the time from start to the first finished step, and img/s over
// steps 3…--batches (the first two include warm-up). Prints one table row per size and the ratio
// of the peaks between the largest and the smallest size.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLASSES = 10;

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};

async function main() {
  const sizes = opt('sizes', '2000,20000').split(',').map(Number);
  const batches = Number(opt('batches', '8'));
  const tree = resolve(opt('tree', HERE));
  const work = resolve(opt('work', '/tmp/podium-membench'));
  const keep = args.includes('--keep');
  if (!existsSync(join(tree, 'dist', 'stages', 'finetune.js')))
    throw new Error(`${tree} has no dist/stages/finetune.js: run npm run build there`);
  const rows = [];
  for (const n of sizes) {
    const project = join(work, `n${n}`);
    const images = await prepare(project, n);
    if (args.includes('--prepare')) continue;
    const r = await measure(tree, project, images, batches);
    rows.push({ n, ...r });
    console.log(
      `N=${n}: peak RssAnon ${mb(r.anon)} MB, peak RSS ${mb(r.rss)} MB (VmHWM ${mb(r.hwm)} MB), first step after ${r.firstStep.toFixed(1)} s, ${r.imgPerSec.toFixed(2)} img/s over steps 3-${batches} (a step ${(32000 / r.imgPerSec).toFixed(0)} ms; preparing a batch ${r.prepMs.toFixed(0)} ms of it); load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    if (!keep && !args.includes('--prepare')) rmSync(project, { recursive: true, force: true });
  }
  console.log(`\ntree ${tree}`);
  console.log('| images | peak RssAnon | peak RSS | first step after | img/s (steps 3…) | batch preparation |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.n} | ${mb(r.anon)} MB | ${mb(r.rss)} MB | ${r.firstStep.toFixed(1)} s | ${r.imgPerSec.toFixed(2)} | ${r.prepMs.toFixed(0)} ms |`,
    );
  if (rows.length > 1) {
    const [a, b] = [rows[0], rows.at(-1)];
    console.log(
      `\nRssAnon ${b.n} / ${a.n}: ${(b.anon / a.anon).toFixed(3)}; RSS: ${(b.rss / a.rss).toFixed(3)} (target: RssAnon within 1.10)`,
    );
  }
}

const mb = (kb) => (kb / 1024).toFixed(0);

/** The decoded set of N training images at 256 px, made once; returns its `images` digest. */
async function prepare(project, n) {
  const lock = join(project, 'p.lock.json');
  if (!existsSync(lock)) {
    const t0 = Date.now();
    await writeJpegs(join(project, 'data'), n);
    writeFileSync(
      join(project, 'p.json'),
      JSON.stringify(
        {
          name: `membench-${n}`,
          seed: 1,
          stages: {
            images: { uses: 'dataset', params: { format: 'imagefolder', root: 'data', splits: ['train'] } },
            decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 256, decoder: 'fast' } },
          },
        },
        null,
        2,
      ),
    );
    const r = spawnSync('node', [join(HERE, 'dist', 'runner', 'cli.js'), 'run', 'p.json', '--no-report', '-q'], {
      cwd: project,
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new Error(`preparing ${project} failed (exit ${r.status})`);
    console.log(`prepared ${n} images in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  return JSON.parse(readFileSync(lock, 'utf8')).stages.decoded.outputs.images;
}

/**
 * N distinct 256×256 JPEGs in CLASSES class folders: smooth colour ramps with a per-image tint
 * and a little noise, so they compress like photos (~10–20 KB) rather than like noise. The
 * dataset's own synthetic scenes would do too, but paint at ~75 ms an image here.
 */
async function writeJpegs(root, n) {
  const sharp = createRequire(join(HERE, 'package.json'))('sharp');
  const side = 256;
  let next = 0;
  const one = async (i) => {
    const c = i % CLASSES;
    const dir = join(root, 'train', `c${c}`);
    mkdirSync(dir, { recursive: true });
    const px = Buffer.alloc(side * side * 3);
    let h = (i * 2654435761) >>> 0;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        h = (h * 1103515245 + 12345) >>> 0;
        const o = (y * side + x) * 3;
        px[o] = (x + c * 25 + (h >>> 28)) & 255;
        px[o + 1] = (y + (i % 97)) & 255;
        px[o + 2] = ((x + y) / 2 + (i % 53) * 3) & 255;
      }
    }
    await sharp(px, { raw: { width: side, height: side, channels: 3 } })
      .jpeg({ quality: 85 })
      .toFile(join(dir, `${i}.jpg`));
  };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) await one(next++);
    }),
  );
}

/** Runs the child and samples its memory until it exits. */
async function measure(tree, project, images, batches) {
  const proc = spawn('node', [fileURLToPath(import.meta.url), '--child', tree, project, String(batches)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PODIUM_MEMBENCH_IMAGES: images },
  });
  let out = '';
  proc.stdout.on('data', (d) => {
    out += d;
  });
  const peak = { anon: 0, rss: 0, hwm: 0 };
  const sample = () => {
    try {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      peak.anon = Math.max(peak.anon, kb('RssAnon'));
      peak.rss = Math.max(peak.rss, kb('VmRSS'));
      peak.hwm = Math.max(peak.hwm, kb('VmHWM'));
    } catch {
      /* exited between samples */
    }
  };
  const timer = setInterval(sample, 100);
  const code = await new Promise((r) => proc.on('exit', r));
  clearInterval(timer);
  if (code !== 0) throw new Error(`finetune child exited with ${code}`);
  return { ...peak, ...JSON.parse(out.trim().split('\n').at(-1)) };
}

/** In the child: finetune from `tree`'s dist on the project's cache, stopped after `batches` steps. */
async function child(tree, project, batches) {
  const started = performance.now();
  const { LmdbStore } = await import(join(tree, 'dist', 'cache', 'lmdb-store.js'));
  const { finetune } = await import(join(tree, 'dist', 'stages', 'finetune.js'));
  const store = new LmdbStore(join(project, '.podium', 'cache'), { strictReads: true });
  const prepMs = batchPreparation(
    tree,
    store,
    await import(join(tree, 'dist', 'stages', 'data', 'augment', 'index.js')),
    await import(join(tree, 'dist', 'stages', 'data', 'decoded.js')),
  );
  const stamps = [];
  const report = () => {
    const steady = stamps.slice(2);
    const imgPerSec = steady.length > 1 ? ((steady.length - 1) * 32) / ((steady.at(-1) - steady[0]) / 1000) : NaN;
    process.stdout.write(`${JSON.stringify({ firstStep: (stamps[0] - started) / 1000, imgPerSec, prepMs })}\n`);
    process.exit(0);
  };
  const ctx = {
    stageId: 'bench',
    key: 'b'.repeat(64),
    resume: false,
    projectDir: project,
    seed: 1,
    slot: 0,
    gpu: undefined,
    threads: 2,
    inputs: { images: { stageId: 'decoded', outputs: { images: process.env.PODIUM_MEMBENCH_IMAGES }, metrics: {} } },
    store,
    signal: new AbortController().signal,
    log: () => {},
    note: () => {},
    // finetune reports after every step that ends ≥ 250 ms after the last report: every step here.
    progress: ({ done }) => {
      stamps.push(performance.now());
      if (done >= batches) report();
    },
  };
  const params = {
    model: 'mobilenet_v2',
    cutAt: null,
    inputSize: 224,
    epochs: 1,
    batchSize: 32,
    lr: 0.01,
    lrSteps: [],
    lrFactor: 0.1,
    momentum: 0.9,
    weightDecay: 0.0001,
    optimizer: 'sgd',
    trainable: 'all',
    labelSmoothing: 0,
    headDropout: 0,
    batchNormMomentum: 0.9,
    backend: 'wasm',
    evalSplit: 'val',
  };
  await finetune.run(ctx, params);
  throw new Error('the epoch ended before the requested number of steps');
}

/**
 * What preparing one batch costs on the training thread (read 32 images from the cache, level-1
 * augmentation to 224 px), ms, mean of 5 batches after one warm-up: the part a prefetch on another
 * thread could hide. Reads through withBlobs where the tree has it, else getBlob.
 */
function batchPreparation(tree, store, augment, decoded) {
  const set = JSON.parse(store.getBlob(process.env.PODIUM_MEMBENCH_IMAGES).toString());
  const rows = set.splits.train;
  const out = new Float32Array(32 * 224 * 224 * 3);
  const policy = augment.policyForLevel(1, 224);
  const one = (b) => {
    const idx = Array.from({ length: 32 }, (_, i) => (b * 32 + i) % rows.length);
    const digests = idx.map((i) => rows[i].blob);
    const fill = (images) => augment.augmentBatch(images, idx, policy, 1, 0, out);
    if (store.withBlobs) store.withBlobs(digests, (views) => fill(views.map(decoded.decodeDecoded)));
    else fill(digests.map((d) => decoded.decodeDecoded(store.getBlob(d))));
  };
  one(0);
  const t0 = performance.now();
  for (let b = 1; b <= 5; b++) one(b);
  return (performance.now() - t0) / 5;
}

if (args[0] === '--child') await child(args[1], args[2], Number(args[3]));
else await main();
