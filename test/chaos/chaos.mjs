#!/usr/bin/env node
// The chaos suite: podium's promise — a finished result is never lost, a wrong one never used —
// tried the way a reliability engineer would, on pipelines/ci-small.json (the whole recipe in
// miniature), through the real CLI in throw-away projects.
//
//   npm run chaos -- [--kills 20] [--seed 1] [--gc-runs 12] [--signals 6] [--fast]
//
// --fast (what .ci/run runs) does fewer repetitions of every case. Exit 1 when any case failed.
// Cases needing root (a full tmpfs, a read-only bind mount) are skipped, with a line, without it.
import { spawn, execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'runner', 'cli.js');
const { open } = createRequire(join(ROOT, 'package.json'))('lmdb');

const { values: args } = parseArgs({
  options: {
    kills: { type: 'string' },
    seed: { type: 'string' },
    'gc-runs': { type: 'string' },
    signals: { type: 'string' },
    fast: { type: 'boolean' },
  },
});
const fast = !!args.fast;
const KILLS = Number(args.kills ?? (fast ? 6 : 20));
const GC_RUNS = Number(args['gc-runs'] ?? (fast ? 4 : 12));
const SIGNALS = Number(args.signals ?? (fast ? 2 : 6));
let rngState = Number(args.seed ?? 1) >>> 0 || 1;
/** xorshift32: the kill moments are reproducible from --seed. */
const random = () => {
  rngState ^= rngState << 13;
  rngState >>>= 0;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5;
  rngState >>>= 0;
  return rngState / 2 ** 32;
};
const isRoot = process.getuid?.() === 0;

// ---------------------------------------------------------------- projects and processes

const PIPELINE = JSON.parse(readFileSync(join(ROOT, 'pipelines', 'ci-small.json'), 'utf8'));
delete PIPELINE.$schema;
const projects = [];

function newProject(pipeline = PIPELINE, name = 'p.json') {
  const dir = mkdtempSync(join(tmpdir(), 'podium-chaos-'));
  projects.push(dir);
  writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
  writeFileSync(join(dir, name), JSON.stringify(pipeline, null, 2));
  return dir;
}

/** Starts `node cli.js ...args` in its own process group; collects stderr; resolves on exit. */
function start(dir, cliArgs, { env = {} } = {}) {
  const child = spawn(process.execPath, [CLI, ...cliArgs], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const run = { child, stdout: '', stderr: '', listeners: [] };
  child.stdout.on('data', (d) => {
    run.stdout += d;
  });
  child.stderr.on('data', (d) => {
    run.stderr += d;
    for (const l of run.listeners) l(run.stderr);
  });
  run.done = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, at: Date.now() })));
  run.when = (re) =>
    new Promise((res) => {
      if (re.test(run.stderr)) res();
      else
        run.listeners.push((s) => {
          if (re.test(s)) res();
        });
    });
  return run;
}

async function cli(dir, ...cliArgs) {
  const r = start(dir, cliArgs);
  const { code } = await r.done;
  return { code, stdout: r.stdout, stderr: r.stderr };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** pid → parent pid, from /proc. */
function parents() {
  const out = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The process and every descendant, stopped first so none reacts, then SIGKILLed: a machine crash for them. */
function killTree(pid) {
  const ppid = parents();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of ppid) if (pp === tree[i]) tree.push(p);
  for (const p of tree)
    try {
      process.kill(p, 'SIGSTOP');
    } catch {
      /* gone */
    }
  for (const p of tree)
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  return tree.length;
}

/** Processes (other than us) whose working directory is inside the project: orphans, if any remain. */
function processesIn(dir) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`).startsWith(dir)) out.push(Number(name));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

async function noOrphans(dir, ms = 3000) {
  const until = Date.now() + ms;
  while (processesIn(dir).length && Date.now() < until) await sleep(50);
  return processesIn(dir);
}

/** Files a half-finished write would leave: podium writes beside and renames. */
function tempFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/podium-tmp/.test(e.name)) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

function withCache(dir, fn) {
  const env = open({ path: join(dir, '.podium', 'cache'), maxDbs: 16 });
  try {
    return fn(env);
  } finally {
    env.close();
  }
}

/** Committed finetune epochs per stage key (the progress the next run must not redo). */
function committedEpochs(dir) {
  if (!existsSync(join(dir, '.podium', 'cache', 'data.mdb'))) return new Map();
  return withCache(dir, (env) => {
    const index = env.openDB({ name: 'index' });
    const out = new Map();
    for (const key of index.getKeys()) {
      const m = /^finetune:([0-9a-f]{64}):(\d+)$/.exec(String(key));
      if (m) out.set(m[1], Math.max(out.get(m[1]) ?? 0, Number(m[2]) + 1));
    }
    return out;
  });
}

function flipByte(dir, digest) {
  withCache(dir, (env) => {
    const data = env.openDB({ name: 'blob-data', encoding: 'binary' });
    const bytes = Buffer.from(data.get(digest));
    bytes[bytes.length >> 1] ^= 0xff;
    data.putSync(digest, bytes);
  });
}

const ranCount = (stderr) => Number(/(\d+) ran/.exec(stderr.split('\n').filter(Boolean).at(-1) ?? '')?.[1] ?? 0);

// ---------------------------------------------------------------- the reference

const refDir = newProject();
const refStart = Date.now();
const ref = await cli(refDir, 'run', 'p.json');
const refMs = Date.now() - refStart;
if (ref.code !== 0) {
  process.stderr.write(`reference run failed:\n${ref.stderr}\n`);
  process.exit(1);
}
const REF_LOCK = readFileSync(join(refDir, 'p.lock.json'), 'utf8');
const refLock = JSON.parse(REF_LOCK);
const epochsOf = Object.fromEntries(
  Object.entries(refLock.stages)
    .filter(([, s]) => s.kind === 'finetune')
    .map(([, s]) => [s.key, s.params.epochs]),
);
process.stderr.write(`reference: ci-small from an empty cache in ${(refMs / 1000).toFixed(1)} s\n`);

const results = [];
function record(name, runs, survived, redone, notes = []) {
  results.push({ name, runs, survived, redone, notes: [...new Set(notes)] });
  process.stderr.write(`${name}: ${survived}/${runs}${notes.length ? ` — ${[...new Set(notes)].join('; ')}` : ''}\n`);
}

/**
 * After an interruption: the rerun must succeed with the reference's lock byte for byte
 * (metrics included), retrain no committed epoch, leave no orphan or temp file, and verify.
 */
async function checkRecovery(dir, problems) {
  const orphans = await noOrphans(dir);
  if (orphans.length) problems.push(`orphans ${orphans.join(',')}`);
  const committed = committedEpochs(dir);
  const rerun = await cli(dir, 'run', 'p.json', '--verbose');
  if (rerun.code !== 0) problems.push(`rerun exit ${rerun.code}: ${rerun.stderr.split('\n').filter(Boolean).at(-1)}`);
  if (existsSync(join(dir, 'p.lock.json')) && readFileSync(join(dir, 'p.lock.json'), 'utf8') !== REF_LOCK)
    problems.push('lock differs from the reference');
  for (const [key, n] of committed) {
    const id = Object.entries(refLock.stages).find(([, s]) => s.key === key)?.[0];
    if (!id || n >= epochsOf[key]) continue; // a record exists, or progress of another key
    const resumed = new RegExp(`${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\| resuming after epoch (\\d+)`).exec(
      rerun.stderr,
    );
    const trainedAgain = rerun.stderr.includes(`${id}| epoch 1/`);
    if (trainedAgain || (resumed && Number(resumed[1]) < n))
      problems.push(`${id}: retrained committed epochs (had ${n}, resumed after ${resumed?.[1] ?? 0})`);
  }
  const tmp = tempFiles(dir);
  if (tmp.length) problems.push(`temp files left: ${tmp.join(', ')}`);
  const v = await cli(dir, 'verify', 'p.json');
  if (v.code !== 0) problems.push(`verify exit ${v.code}`);
  return ranCount(rerun.stderr);
}

// ---------------------------------------------------------------- cases

const POINTS = [
  ['during decode', /start\s+decoded/, 60],
  ['mid-epoch', /tiny@lr=0\.05\| epoch 1\//, 80],
  ['in the sweep', /start\s+sweep/, 200],
  ['in tta', /start\s+tta/, 200],
  ['between export and record', /start\s+submit/, 30],
  ['after the lock write', /ci-small: 9 ran/, 0],
];

async function killCase() {
  let survived = 0;
  let redone = 0;
  const notes = [];
  for (let i = 0; i < KILLS; i++) {
    const dir = newProject();
    const run = start(dir, ['run', 'p.json', '--verbose']);
    const [what, re, jitter] = i < POINTS.length ? POINTS[i] : ['at a random moment', null, 0];
    const finished = run.done.then(() => 'finished');
    const trigger = re ? run.when(re).then(() => sleep(random() * jitter)) : sleep(random() * refMs);
    if ((await Promise.race([trigger.then(() => 'kill'), finished])) === 'kill') killTree(run.child.pid);
    await run.done;
    const problems = [];
    redone += await checkRecovery(dir, problems);
    if (problems.length) notes.push(`kill ${i + 1} (${what}): ${problems.join(', ')}`);
    else survived++;
  }
  record(
    'SIGKILL runner and all descendants (named points, then seeded random moments)',
    KILLS,
    survived,
    `${redone} stages re-ran`,
    notes,
  );
}

async function signalCase() {
  let survived = 0;
  let redone = 0;
  const notes = [];
  for (let i = 0; i < SIGNALS; i++) {
    const sig = i % 2 ? 'SIGTERM' : 'SIGINT';
    const dir = newProject();
    const run = start(dir, ['run', 'p.json', '--verbose']);
    const finished = run.done.then(() => 'finished');
    const problems = [];
    if ((await Promise.race([sleep(200 + random() * (refMs - 400)).then(() => 'signal'), finished])) === 'signal') {
      const sent = Date.now();
      run.child.kill(sig);
      const { code, at } = await run.done;
      if (at - sent > 1000) problems.push(`took ${at - sent} ms to stop`);
      if (code !== (sig === 'SIGINT' ? 130 : 143) && code !== 0) problems.push(`${sig} exit ${code}`);
      if (code !== 0 && !/interrupted: kept \d+ finished stage/.test(run.stderr))
        problems.push('no "interrupted: kept N" line');
      if (/internal error|\n\s+at /.test(run.stderr)) problems.push('a stack trace');
    }
    redone += await checkRecovery(dir, problems);
    if (problems.length) notes.push(`${sig} ${i + 1}: ${problems.join(', ')}`);
    else survived++;
  }
  record(
    'SIGINT / SIGTERM to the runner at seeded random moments',
    SIGNALS,
    survived,
    `${redone} stages re-ran`,
    notes,
  );
}

/** The lines of a run's stderr that say what failed (a stage's ✗ line and its cause), else the last. */
function failureLines(stderr) {
  const lines = stderr.split('\n').filter(Boolean);
  const failed = lines.filter((l) => /✗|failed:|Error/.test(l));
  return (failed.length ? failed.slice(0, 3) : lines.slice(-1)).join(' | ');
}

async function gcCase() {
  const dir = newProject();
  let stop = false;
  let sweeps = 0;
  const loop = (async () => {
    while (!stop) {
      const r = await cli(dir, 'gc', '--keep-runs', '0');
      if (r.code === 0) sweeps++;
    }
  })();
  // Seeds alternate, so runs compute anew, reuse what gc left, and lose what it may take.
  const seeds = [7, 8, 9];
  const refs = new Map([[7, REF_LOCK]]);
  let survived = 0;
  const notes = [];
  for (let i = 0; i < GC_RUNS; i++) {
    const seed = seeds[i % seeds.length];
    if (!refs.has(seed)) {
      const d = newProject({ ...PIPELINE, seed });
      await cli(d, 'run', 'p.json');
      refs.set(seed, readFileSync(join(d, 'p.lock.json'), 'utf8'));
    }
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ ...PIPELINE, seed }, null, 2));
    const r = await cli(dir, 'run', 'p.json');
    const problems = [];
    if (r.code !== 0) problems.push(`exit ${r.code}: ${failureLines(r.stderr)}`);
    else if (readFileSync(join(dir, 'p.lock.json'), 'utf8') !== refs.get(seed))
      problems.push('lock differs from the reference');
    if (problems.length) notes.push(`run ${i + 1}: ${problems.join(', ')}`);
    else survived++;
  }
  stop = true;
  await loop;
  const v = await cli(dir, 'verify', 'p.json');
  if (v.code !== 0) notes.push(`verify after the loop: exit ${v.code}`);
  record(
    `runs with \`gc --keep-runs 0\` looping beside them (${sweeps} sweeps done)`,
    GC_RUNS,
    v.code === 0 ? survived : 0,
    '-',
    notes,
  );
}

async function concurrencyCase() {
  const notes = [];
  let survived = 0;
  // Two identical runs on one cache: both succeed, each key computed once.
  const dir = newProject();
  const [a, b] = await Promise.all([cli(dir, 'run', 'p.json'), cli(dir, 'run', 'p.json')]);
  if (a.code || b.code) notes.push(`two runs: exits ${a.code}/${b.code}`);
  else if (ranCount(a.stderr) + ranCount(b.stderr) !== 9)
    notes.push(`two runs computed ${ranCount(a.stderr) + ranCount(b.stderr)} stages, not 9`);
  else survived++;
  // Two pipelines sharing 7 stages: the shared ones computed once.
  const q = {
    ...PIPELINE,
    name: 'ci-small-mean',
    stages: {
      ...PIPELINE.stages,
      fused: { ...PIPELINE.stages.fused, params: { method: 'mean' } },
      submit: { ...PIPELINE.stages.submit, params: { ...PIPELINE.stages.submit.params, path: 'out/mean.json' } },
    },
  };
  const dir2 = newProject();
  writeFileSync(join(dir2, 'q.json'), JSON.stringify(q, null, 2));
  const [p1, q1] = await Promise.all([cli(dir2, 'run', 'p.json'), cli(dir2, 'run', 'q.json')]);
  const total = (s) => {
    const m = /: (?:(\d+) ran)?(?:, )?(?:(\d+) cached)?/.exec(s.split('\n').filter(Boolean).at(-1) ?? '');
    return Number(m?.[1] ?? 0);
  };
  if (p1.code || q1.code) notes.push(`two pipelines: exits ${p1.code}/${q1.code}`);
  else if (total(p1.stderr) + total(q1.stderr) !== 11)
    notes.push(`two pipelines computed ${total(p1.stderr) + total(q1.stderr)} stages, not 11`);
  else if (readFileSync(join(dir2, 'p.lock.json'), 'utf8') !== REF_LOCK) notes.push('two pipelines: lock differs');
  else survived++;
  record('two runs at once; two pipelines sharing 7 stages at once', 2, survived, '-', notes);
}

async function staleLeaseCase() {
  const dir = newProject();
  const key = refLock.stages.images.key;
  mkdirSync(join(dir, '.podium', 'cache'), { recursive: true });
  // PID 1 is alive, but it did not take this lease: another boot's start time.
  withCache(dir, (env) =>
    env.openDB({ name: 'leases' }).putSync(key, {
      pid: 1,
      host: hostname(),
      since: Date.now() - 3_600_000,
      start: 'another-boot:1',
      what: 'stage images of p.json',
    }),
  );
  const t = Date.now();
  const r = await cli(dir, 'run', 'p.json', '--lease-timeout', '20');
  const ok = r.code === 0 && Date.now() - t < 15_000 && readFileSync(join(dir, 'p.lock.json'), 'utf8') === REF_LOCK;
  record(
    'a stale lease whose PID now belongs to another process',
    1,
    ok ? 1 : 0,
    '-',
    ok ? [] : [`exit ${r.code} after ${Date.now() - t} ms`],
  );
}

async function tamperCase() {
  const notes = [];
  let survived = 0;
  const recordOf = (dir, key) => withCache(dir, (env) => env.openDB({ name: 'records' }).get(key));
  // Read path: a decoded image tta reads.
  {
    const dir = newProject();
    await cli(dir, 'run', 'p.json');
    // A decoded image finetune reads (every split): forcing it reads them all again.
    flipByte(dir, recordOf(dir, refLock.stages.decoded.key).refs[0]);
    const r = await cli(dir, 'run', 'p.json', '--force', 'tiny');
    const ok =
      r.code === 0 &&
      /no longer hashes to its key/.test(r.stderr) &&
      readFileSync(join(dir, 'p.lock.json'), 'utf8') === REF_LOCK;
    if (ok) survived++;
    else notes.push(`read path: exit ${r.code} (${r.stderr.trim().split('\n').at(-1)})`);
  }
  // Restore path: the submission's blob, with the file on disk gone.
  {
    const dir = newProject();
    await cli(dir, 'run', 'p.json');
    flipByte(dir, refLock.stages.submit.outputs.submission);
    rmSync(join(dir, 'out', 'ci-small-submission.json'));
    const r = await cli(dir, 'run', 'p.json', '--force', 'fused');
    const same =
      readFileSync(join(dir, 'out', 'ci-small-submission.json'), 'utf8') ===
      readFileSync(join(refDir, 'out', 'ci-small-submission.json'), 'utf8');
    if (r.code === 0 && same && readFileSync(join(dir, 'p.lock.json'), 'utf8') === REF_LOCK) survived++;
    else notes.push(`restore path: exit ${r.code}, file ${same ? 'same' : 'differs'}`);
  }
  // Resume path: a finetune killed after an epoch, its saved weights then corrupted.
  {
    const dir = newProject();
    const run = start(dir, ['run', 'p.json', '--verbose']);
    await Promise.race([run.when(/tiny@lr=0\.05\| epoch 2\//), run.done]);
    killTree(run.child.pid);
    await run.done;
    const key = refLock.stages['tiny@lr=0.05'].key;
    const saved = withCache(dir, (env) => {
      const index = env.openDB({ name: 'index' });
      return [...index.getRange()]
        .filter((e) => String(e.key).startsWith(`finetune:${key}:`))
        .map((e) => e.value.blobs[0]);
    });
    for (const d of saved) flipByte(dir, d);
    const r = await cli(dir, 'run', 'p.json', '--verbose');
    const ok =
      r.code === 0 &&
      readFileSync(join(dir, 'p.lock.json'), 'utf8') === REF_LOCK &&
      (saved.length === 0 || /no longer hashes to its key/.test(r.stderr));
    if (ok) survived++;
    else notes.push(`resume path (${saved.length} saved epochs corrupted): exit ${r.code}`);
  }
  record('a flipped byte in a stored blob, on the read, restore and resume paths', 3, survived, '-', notes);
}

async function diskCase() {
  if (!isRoot) {
    record('disk full (tmpfs), read-only cache', 0, 0, '-', ['skipped: needs root to mount']);
    return;
  }
  const notes = [];
  let survived = 0;
  {
    const dir = newProject();
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const full = await cli(dir, 'run', 'p.json', '--cache', 'small/cache');
      const lines = full.stderr.split('\n').filter((l) => l.startsWith('podium:'));
      const oneLine =
        full.code === 1 && lines.length === 1 && /no space left/.test(lines[0]) && !/\n\s+at /.test(full.stderr);
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      const again = await cli(dir, 'run', 'p.json', '--cache', 'small/cache', '--lease-timeout', '5');
      if (oneLine && again.code === 0 && readFileSync(join(dir, 'p.lock.json'), 'utf8') === REF_LOCK) survived++;
      else
        notes.push(
          `disk full: exit ${full.code} (${lines.join(' | ') || full.stderr.trim().split('\n').at(-1)}), rerun exit ${again.code} (${again.stderr.trim().split('\n').at(-1)})`,
        );
    } finally {
      execFileSync('umount', [mnt]);
    }
  }
  {
    const dir = newProject();
    await cli(dir, 'run', 'p.json');
    const cache = join(dir, '.podium', 'cache');
    execFileSync('mount', ['--bind', cache, cache]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', cache]);
      writeFileSync(join(dir, 'p.json'), JSON.stringify({ ...PIPELINE, seed: 8 }, null, 2));
      const r = await cli(dir, 'run', 'p.json');
      if (
        r.code === 1 &&
        r.stderr.trim() ===
          `podium: cache ${cache} is not writable (read-only file system); fix its permissions or choose another with --cache DIR`
      )
        survived++;
      else notes.push(`read-only: exit ${r.code}: ${r.stderr.trim()}`);
    } finally {
      execFileSync('umount', [cache]);
    }
  }
  record('disk full on a 1 MiB tmpfs, then room; a read-only cache', 2, survived, '-', notes);
}

// ---------------------------------------------------------------- run and report

const began = Date.now();
try {
  await killCase();
  await signalCase();
  await gcCase();
  await concurrencyCase();
  await staleLeaseCase();
  await tamperCase();
  await diskCase();
} finally {
  for (const d of projects) rmSync(d, { recursive: true, force: true });
}

const rows = [
  ['case', 'runs', 'survived', 'work redone'],
  ...results.map((r) => [r.name, String(r.runs), String(r.survived), r.redone]),
];
const width = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
process.stdout.write(
  `\nchaos suite, seed ${args.seed ?? 1}${fast ? ', fast' : ''}, ${((Date.now() - began) / 1000).toFixed(0)} s\n`,
);
for (const [i, r] of rows.entries()) {
  process.stdout.write(`${r.map((cell, c) => (c ? cell.padStart(width[c]) : cell.padEnd(width[c]))).join('  ')}\n`);
  if (i === 0) process.stdout.write(`${width.map((w) => '-'.repeat(w)).join('  ')}\n`);
}
for (const r of results) for (const n of r.notes) process.stdout.write(`  ${r.name.split(' (')[0]}: ${n}\n`);
const failed = results.some((r) => r.survived < r.runs);
process.exit(failed ? 1 : 0);
