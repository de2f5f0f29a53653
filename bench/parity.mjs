// Accuracy parity with PyTorch, by seed (issue 17, item 6): recipe A on intel6 run S times per side,
// val and test top-1 with one centre crop, mean ± sd per side, the gap, and whether the gap exceeds
// the seed-to-seed spread (Welch's two-sided t-test; with n = 3 per side it only catches large,
// consistent gaps, and says so).
//
//   nice -n 19 node bench/parity.mjs [--seeds 0,1,2] [--side torch|podium|both] [--torch-wd all|kernels|both]
//                                    [--head-init normal-0.01|glorot-uniform] [--torch-head normal-0.01|glorot-uniform]
// --head-init is podium's finetune headInit; --torch-head the PyTorch classifier's init (torchref's is
// normal-0.01; glorot-uniform runs bench/torch_train_wd.py --head_init glorot-uniform).
//                                    [--work DIR] [--log FILE] [--table-only]
//
// PyTorch side: ../shared/torchref (README there) in $WORK/torch as REF_DIR: `train.py --name A --lr 0.01
// --wd 1e-4 --epochs 12 --milestones 8 --seed S` (weight decay on every parameter, PyTorch's SGD), or with
// --torch-wd kernels bench/torch_train_wd.py --wd_on kernels (decay on conv/linear weights only, as podium).
// podium side: a generated pipeline per seed in the project $WORK/podium (its own .podium cache; the
// dataset is read in place): dataset → decode (shortSide 146) → augment (level 1, crop 128) → finetune
// (mobilenet_v2, 128 px, 12 epochs, batch 32, lr 0.01, lrSteps [8], momentum 0.9, wd 1e-4) →
// multicrop-predict (crops '1', scale 146), pipeline seed S; val/test top-1 from the run's report data.
// Each finished run appends one JSON line to the log (default $WORK/parity.jsonl), so partial results
// survive; a rerun skips (side, seed) pairs already in the log, and --table-only prints the table from it.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(REPO, 'dist/runner/cli.js');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const fail = (msg) => {
  console.error(`parity: ${msg}`);
  process.exit(2);
};

const seeds = option('--seeds', '0,1,2')
  .split(',')
  .map((s) => {
    if (!/^\d+$/.test(s.trim())) fail(`--seeds: "${s}" is not a non-negative integer`);
    return Number(s);
  });
const side = option('--side', 'both');
if (!['torch', 'podium', 'both'].includes(side)) fail(`--side: "${side}" is not torch, podium or both`);
const headInit = option('--head-init', 'normal-0.01');
if (!['normal-0.01', 'glorot-uniform'].includes(headInit))
  fail(`--head-init: "${headInit}" is not normal-0.01 or glorot-uniform`);
const torchHead = option('--torch-head', 'normal-0.01');
if (!['normal-0.01', 'glorot-uniform'].includes(torchHead))
  fail(`--torch-head: "${torchHead}" is not normal-0.01 or glorot-uniform`);
const torchWd = option('--torch-wd', 'all');
if (!['all', 'kernels', 'both'].includes(torchWd)) fail(`--torch-wd: "${torchWd}" is not all, kernels or both`);
const work = resolve(option('--work', join(tmpdir(), 'podium-parity')));
const logFile = resolve(option('--log', join(work, 'parity.jsonl')));
const torchref = resolve(option('--torchref', join(REPO, '../shared/torchref')));
const dataset = resolve(option('--dataset', join(REPO, '../shared/datasets/intel6')));
mkdirSync(work, { recursive: true });

const readLog = () =>
  existsSync(logFile)
    ? readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
const record = (entry) => {
  appendFileSync(logFile, `${JSON.stringify({ ...entry, finishedAt: new Date().toISOString() })}\n`);
  console.log(
    `parity: ${entry.label} seed ${entry.seed}: val ${entry.val.toFixed(2)} test ${entry.test.toFixed(2)} (${Math.round(entry.seconds)} s) → ${logFile}`,
  );
};
const done = (label, seed) => readLog().some((e) => e.label === label && e.seed === seed);

/** Runs a child with its output on ours and in a log file; rejects with the last lines on failure. */
function runChild(cmd, argv, opts, logPath) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (d) => {
      process.stdout.write(d);
      appendFileSync(logPath, d);
      tail = (tail + d).slice(-2000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise()
        : reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}; log ${logPath}\n${tail}`)),
    );
  });
}

// ---- PyTorch ----
function torchReady() {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, torchvision, PIL'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
function setUpTorch() {
  if (!torchReady()) {
    console.log('parity: import torch failed; apt-get install -y python3-torch python3-torchvision python3-pil');
    try {
      execFileSync('apt-get', ['install', '-y', 'python3-torch', 'python3-torchvision', 'python3-pil'], {
        stdio: 'inherit',
      });
    } catch {
      /* judged below */
    }
    if (!torchReady()) fail('PyTorch is not importable by /usr/bin/python3 and apt-get could not install it');
  }
  if (!existsSync(join(torchref, 'train.py'))) fail(`--torchref: no train.py in ${torchref}`);
  const refDir = join(work, 'torch');
  mkdirSync(join(refDir, 'results'), { recursive: true });
  for (const f of readdirSync(torchref).filter((n) => n.endsWith('.py')))
    copyFileSync(join(torchref, f), join(refDir, f));
  copyFileSync(join(REPO, 'bench/torch_train_wd.py'), join(refDir, 'torch_train_wd.py'));
  if (!existsSync(join(refDir, 'weights.bin'))) {
    execFileSync(process.execPath, [join(torchref, 'dump_weights.js')], {
      env: { ...process.env, REF_DIR: refDir, TFPROBE_DIR: REPO },
      stdio: 'inherit',
    });
  }
  return refDir;
}
async function runTorch(refDir, seed, wdOn) {
  const glorot = torchHead === 'glorot-uniform';
  const label = `torch (wd ${wdOn}${glorot ? ', head glorot-uniform' : ''})`;
  if (done(label, seed)) return console.log(`parity: ${label} seed ${seed} already in ${logFile}`);
  const name = `A_wd${wdOn}${glorot ? '_hglorot' : ''}_s${seed}`;
  const script = wdOn === 'all' && !glorot ? 'train.py' : 'torch_train_wd.py';
  const recipe = [
    '--name',
    name,
    '--lr',
    '0.01',
    '--wd',
    '1e-4',
    '--epochs',
    '12',
    '--milestones',
    '8',
    '--seed',
    String(seed),
    '--eval_scales',
    '128:146',
  ];
  const t0 = Date.now();
  await runChild(
    '/usr/bin/python3',
    [
      join(refDir, script),
      ...recipe,
      ...(wdOn === 'all' ? [] : ['--wd_on', wdOn]),
      ...(glorot ? ['--head_init', torchHead] : []),
    ],
    { env: { ...process.env, REF_DIR: refDir, DEV_DATA: dataset } },
    join(refDir, `${name}.log`),
  );
  const r = JSON.parse(readFileSync(join(refDir, 'results', `${name}.json`), 'utf8'));
  const final = r.final['128(resize 146)'];
  record({
    label,
    side: 'torch',
    seed,
    val: final.val_1crop,
    test: final.test_1crop,
    test10: final.test_10crop,
    seconds: (Date.now() - t0) / 1000,
    trainImgPerSec: r.train_img_s_mean,
    valByEpoch: r.epochs.map((e) => e.val),
  });
}

// ---- podium ----
function podiumPipeline(seed) {
  return {
    name: `parity-A-s${seed}`,
    description:
      'Recipe A of bench/parity.mjs: the PyTorch reference recipe, one learning rate, 1 centre crop at scale 146.',
    seed,
    stages: {
      images: { uses: 'dataset', params: { format: 'imagefolder', root: dataset } },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 146 } },
      aug: { uses: 'augment', inputs: { images: 'decoded' }, params: { level: 1, crop: 128 } },
      mnv2: {
        uses: 'finetune',
        inputs: { images: 'decoded', augment: 'aug' },
        params: {
          model: 'mobilenet_v2',
          inputSize: 128,
          epochs: 12,
          batchSize: 32,
          lr: 0.01,
          lrSteps: [8],
          momentum: 0.9,
          weightDecay: 0.0001,
          headInit,
        },
      },
      final: {
        uses: 'multicrop-predict',
        inputs: { models: 'mnv2', images: 'decoded' },
        params: { crops: '1', scales: [146] },
      },
    },
  };
}
async function runPodium(seed) {
  // Entries from before finetune had `headInit` (session 8 and earlier) are 'podium': glorot-uniform.
  const label = `podium (head ${headInit})`;
  if (done(label, seed)) return console.log(`parity: ${label} seed ${seed} already in ${logFile}`);
  const project = join(work, 'podium');
  mkdirSync(join(project, '.podium'), { recursive: true }); // the temp folder is its own project, with its own cache
  const file = join(project, `parity-A-s${seed}.json`);
  writeFileSync(file, `${JSON.stringify(podiumPipeline(seed), null, 2)}\n`);
  const t0 = Date.now();
  await runChild(
    process.execPath,
    [CLI, 'run', file, '--no-report'],
    { cwd: project },
    join(project, `parity-A-s${seed}.log`),
  );
  const { loadPipeline, lockOf, openStore } = await import('../dist/runner/context.js');
  const { gatherReport } = await import('../dist/runner/report/data.js');
  const pipeline = loadPipeline(file);
  const store = openStore({ cache: join(project, '.podium', 'cache') }, project, 'read');
  let data;
  try {
    data = gatherReport(pipeline, store, lockOf(pipeline).lock);
  } finally {
    await store.close();
  }
  const rows =
    data.multicrop
      .find((t) => t.stage === 'final')
      ?.rows.filter((r) => !r.averaged && r.crops === '1' && String(r.scale) === '146') ?? [];
  const top1 = (split) => {
    const r = rows.find((x) => x.split === split);
    if (!r || typeof r.top1 !== 'number')
      throw new Error(`podium seed ${seed}: no ${split} 1-crop row at scale 146 in the report of ${file}`);
    return 100 * r.top1;
  };
  const lock = lockOf(pipeline).lock;
  record({
    label,
    side: 'podium',
    seed,
    val: top1('val'),
    test: top1('test'),
    seconds: (Date.now() - t0) / 1000,
    finetuneKey: lock.stages.mnv2.key,
    finetuneVersion: lock.stages.mnv2.version,
  });
}

// ---- statistics ----
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length < 2 ? NaN : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
/** ln Γ (Lanczos), for the incomplete beta function. */
function lnGamma(z) {
  const c = [
    676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  let x = 0.99999999999980993;
  for (let i = 0; i < c.length; i++) x += c[i] / (z - 1 + i + 1);
  const t = z - 1 + c.length - 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z - 0.5) * Math.log(t) - t + Math.log(x);
}
/** Regularized incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes' betacf). */
function incBeta(x, a, b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incBeta(1 - x, b, a);
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x)) / a;
  let f = 1,
    c = 1,
    d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < 1e-300 ? 1e-300 : d);
  f = d;
  for (let m = 1; m < 300; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < 1e-300 ? 1e-300 : d);
      c = 1 + num / c;
      if (Math.abs(c) < 1e-300) c = 1e-300;
      f *= c * d;
    }
    if (Math.abs(c * d - 1) < 1e-12) break;
  }
  return front * f;
}
/** Welch's t-test, two-sided: t, Welch–Satterthwaite df, p. */
export function welch(a, b) {
  const va = sd(a) ** 2 / a.length,
    vb = sd(b) ** 2 / b.length;
  const t = (mean(a) - mean(b)) / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const p = va + vb === 0 ? (mean(a) === mean(b) ? 1 : 0) : incBeta(df / (df + t * t), df / 2, 0.5);
  return { t, df, p };
}

function printTable() {
  const entries = readLog();
  const isPodium = (label) => label.startsWith('podium');
  const labels = [...new Set(entries.map((e) => e.label))].sort((a, b) => isPodium(a) - isPodium(b));
  if (labels.length === 0) return console.log(`parity: nothing in ${logFile} yet`);
  const by = (label) => entries.filter((e) => e.label === label);
  const allSeeds = [...new Set(entries.map((e) => e.seed))].sort((a, b) => a - b);
  const f = (x) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(2));
  console.log(`\nrecipe A on intel6, top-1 % with 1 centre crop (crop 128 of shorter side 146), from ${logFile}`);
  console.log(`| seed | ${labels.map((l) => `${l} val | ${l} test`).join(' | ')} |`);
  console.log(`|---|${labels.map(() => '---|---').join('|')}|`);
  for (const s of allSeeds)
    console.log(
      `| ${s} | ${labels
        .map((l) => {
          const e = by(l).find((x) => x.seed === s);
          return `${f(e?.val)} | ${f(e?.test)}`;
        })
        .join(' | ')} |`,
    );
  const ms = (xs) =>
    xs.length === 0 ? '-' : xs.length === 1 ? `${f(xs[0])} (n=1)` : `${f(mean(xs))} ± ${f(sd(xs))} (n=${xs.length})`;
  console.log(
    `| mean ± sd | ${labels.map((l) => `${ms(by(l).map((e) => e.val))} | ${ms(by(l).map((e) => e.test))}`).join(' | ')} |`,
  );
  const podiums = labels.filter(isPodium);
  for (const podium of podiums) for (const ref of labels.filter((l) => !isPodium(l))) printGaps(podium, ref, by, f);
  // Two podium recipes (e.g. head inits) against each other too.
  for (let i = 0; i < podiums.length; i++)
    for (let j = i + 1; j < podiums.length; j++) printGaps(podiums[j], podiums[i], by, f);
}

/** podium − reference on val and test, with Welch's test where both sides have ≥ 2 seeds. */
function printGaps(podium, ref, by, f) {
  const pod = by(podium);
  for (const split of ['val', 'test']) {
    const a = pod.map((e) => e[split]),
      b = by(ref).map((e) => e[split]);
    if (a.length === 0 || b.length === 0) {
      console.log(`gap ${podium} − ${ref} on ${split}: not measured (n=${a.length}, ${ref} n=${b.length})`);
      continue;
    }
    const gap = mean(a) - mean(b);
    let verdict;
    if (a.length < 2 || b.length < 2) {
      const spread =
        b.length >= 2
          ? `${ref}'s seeds span ${f(Math.min(...b))}–${f(Math.max(...b))}`
          : a.length >= 2
            ? `podium's seeds span ${f(Math.min(...a))}–${f(Math.max(...a))}`
            : 'no spread measured';
      verdict = `not tested (Welch needs ≥ 2 seeds per side; ${spread})`;
    } else {
      const w = welch(a, b);
      verdict = `Welch's t = ${w.t.toFixed(2)}, df = ${w.df.toFixed(1)}, two-sided p = ${w.p.toFixed(3)}: ${w.p < 0.05 ? 'exceeds the seed-to-seed spread (p < 0.05)' : 'within the seed-to-seed spread (p ≥ 0.05)'}`;
    }
    console.log(`gap ${podium} − ${ref} on ${split}: ${gap >= 0 ? '+' : ''}${f(gap)} points; ${verdict}`);
  }
}

if (!args.includes('--table-only')) {
  console.log(
    `parity: seeds ${seeds.join(',')}, side ${side}, torch weight decay on ${torchWd}; work ${work}; log ${logFile}`,
  );
  if (!existsSync(join(dataset, 'train'))) fail(`--dataset: no train split in ${dataset}`);
  if (side !== 'podium') {
    const refDir = setUpTorch();
    for (const wdOn of torchWd === 'both' ? ['all', 'kernels'] : [torchWd])
      for (const s of seeds) await runTorch(refDir, s, wdOn);
  }
  if (side !== 'torch') {
    if (!existsSync(CLI)) fail(`${CLI} is missing: run npm run build first`);
    for (const s of seeds) await runPodium(s);
  }
}
printTable();
