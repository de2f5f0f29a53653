// bench/slurm-overhead: what --executor slurm adds per stage, from sbatch to the record committed,
// on a throw-away one-node cluster (test/slurm/start-slurm.sh; needs slurm-wlm + munge, as root).
// A chain of N trivial command stages (each waits for the one before, so stages never overlap) is
// run by the local executor and by the SLURM executor, each from an empty cache; the difference
// per stage is the executor's overhead. For scale, the same cluster's bare latency: `sbatch
// --wrap true` until squeue reports COMPLETED (no podium at all).
// Usage: node bench/slurm-overhead.mjs [N] [pollMs]   (default 10 stages, the default poll 500 ms)
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'runner', 'cli.js');
const N = Number(process.argv[2] ?? 10);
const POLL_MS = process.argv[3] ? Number(process.argv[3]) : undefined;
const PORT = 7391;

const parent = mkdtempSync(join(tmpdir(), 'podium-bench-slurm-'));
chmodSync(parent, 0o755);
const cluster = join(parent, 'cluster');
const env = { ...process.env, SLURM_CONF: join(cluster, 'etc', 'slurm.conf'), PODIUM_NO_REPORT: '1' };

function project(name) {
  const dir = join(parent, name);
  const stages = {};
  for (let i = 0; i < N; i++)
    stages[`s${i}`] = {
      uses: 'command',
      ...(i ? { inputs: { prev: `s${i - 1}` } } : {}),
      params: { run: `echo ${i} > out-${i}.txt`, outs: [`out-${i}.txt`] },
    };
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'package.json'), '{"name":"bench"}');
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ name: 'chain', seed: 1, stages }));
  writeFileSync(
    join(dir, 'podium.config.json'),
    JSON.stringify({ remote: join(parent, 'store'), slurm: POLL_MS ? { pollMs: POLL_MS } : {} }),
  );
  return dir;
}

function timed(args, cwd) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('node', [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`podium ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

function bareJobMs() {
  const t0 = process.hrtime.bigint();
  const id = execFileSync('sbatch', ['--parsable', '--output=/dev/null', '--wrap', 'true'], { env }).toString().trim();
  for (;;) {
    const state = spawnSync('squeue', ['--noheader', '--states=all', `--jobs=${id}`, '--format=%T'], { env })
      .stdout.toString()
      .trim();
    if (state === 'COMPLETED') return Number(process.hrtime.bigint() - t0) / 1e6;
    spawnSync('sleep', ['0.05']);
  }
}

try {
  execFileSync(join(ROOT, 'test', 'slurm', 'start-slurm.sh'), [cluster], {
    env: { ...process.env, SLURM_TEST_PORT: String(PORT) },
    stdio: 'ignore',
  });
  const bare = [bareJobMs(), bareJobMs(), bareJobMs()].sort((a, b) => a - b)[1];
  const local = timed(['run', 'p.json'], project('local'));
  const slurm = timed(['run', 'p.json', '--executor', 'slurm'], project('slurm'));
  const per = (ms) => (ms / N).toFixed(0);
  console.log(
    `chain of ${N} command stages, poll ${POLL_MS ?? 500} ms, ${spawnSync('nproc').stdout.toString().trim()} cores`,
  );
  console.log(`  local executor:  ${local.toFixed(0)} ms  (${per(local)} ms per stage)`);
  console.log(`  slurm executor:  ${slurm.toFixed(0)} ms  (${per(slurm)} ms per stage)`);
  console.log(
    `  overhead:        ${per(slurm - local)} ms per stage (sbatch → record committed, beyond the local run)`,
  );
  console.log(`  bare SLURM job:  ${bare.toFixed(0)} ms (sbatch --wrap true → COMPLETED, median of 3)`);
} finally {
  spawnSync(join(ROOT, 'test', 'slurm', 'stop-slurm.sh'), [cluster], { stdio: 'ignore' });
  rmSync(parent, { recursive: true, force: true });
}
