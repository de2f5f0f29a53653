// bench/runner-noop: the bookkeeping cost of a no-op `npx podium run`.
// Builds a pipeline of N independent command stages plus one that takes all of them, runs it
// once, then times the no-op rerun of the CLI as a whole process (Node start-up included).
// References, run here in the same session when installed: GNU make and Snakemake on the same
// DAG shape. Targets from issue #2: N=1000 ≤ 150 ms, N=5000 ≤ 400 ms.
// Usage: node bench/runner-noop.mjs [N ...]   (default: 1000 5000)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CLI = resolve(import.meta.dirname, '..', 'dist', 'runner', 'cli.js');
const TARGET_MS = { 1000: 150, 5000: 400 };
const REPEATS = 7;

function timeMs(cmd, args, cwd) {
  const times = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    times.push(ms);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function podium(n, dir) {
  const stages = {};
  for (let i = 0; i < n; i++)
    stages[`s${i}`] = { uses: 'command', params: { run: `echo ${i} > out/${i}.txt`, outs: [`out/${i}.txt`] } };
  stages.all = {
    uses: 'command',
    inputs: { parts: Object.keys(stages) },
    params: { run: 'cat out/*.txt | wc -l > all.txt', outs: ['all.txt'] },
  };
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ name: `noop-${n}`, stages }));
  mkdirSync(join(dir, 'out'));
  execFileSync('node', [CLI, 'run', 'p.json'], { cwd: dir, stdio: 'ignore' });
  // Let the racy-mtime window pass, so outs are memoised like on any later day, then warm up.
  spawnSync('sleep', ['2.1']);
  execFileSync('node', [CLI, 'run', 'p.json'], { cwd: dir, stdio: 'ignore' });
  return timeMs('node', [CLI, 'run', 'p.json'], dir);
}

function make(n, dir) {
  const lines = [
    `all.txt: ${Array.from({ length: n }, (_, i) => `out/${i}.txt`).join(' ')}\n\tcat out/*.txt | wc -l > all.txt`,
  ];
  for (let i = 0; i < n; i++) lines.push(`out/${i}.txt:\n\techo ${i} > out/${i}.txt`);
  writeFileSync(join(dir, 'Makefile'), `${lines.join('\n')}\n`);
  mkdirSync(join(dir, 'out'), { recursive: true });
  execFileSync('make', ['-s', '-j2'], { cwd: dir, stdio: 'ignore' });
  return timeMs('make', ['-s'], dir);
}

function snakemake(n, dir) {
  writeFileSync(
    join(dir, 'Snakefile'),
    [
      `N = ${n}`,
      'rule all:\n    input: "all.txt"',
      'rule agg:\n    input: expand("out/{i}.txt", i=range(N))\n    output: "all.txt"\n    shell: "cat out/*.txt | wc -l > {output}"',
      'rule part:\n    output: "out/{i}.txt"\n    shell: "echo {wildcards.i} > {output}"',
    ].join('\n') + '\n',
  );
  execFileSync('snakemake', ['-c2', '-q'], { cwd: dir, stdio: 'ignore' });
  return timeMs('snakemake', ['-c2', '-q'], dir);
}

const sizes = process.argv.slice(2).map(Number).filter(Boolean);
// The floor: starting Node itself, measured the same way.
const nodeStart = timeMs('node', ['-e', '0'], tmpdir());
console.log(`node -e 0 (start-up floor): ${nodeStart.toFixed(0)} ms`);
for (const n of sizes.length ? sizes : [1000, 5000]) {
  const row = [];
  const measure = (name, fn) => {
    const dir = mkdtempSync(join(tmpdir(), `podium-bench-${name}-`));
    try {
      return fn(n, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const p = measure('podium', podium);
  const target = TARGET_MS[n];
  row.push(
    `podium ${p.toFixed(0)} ms${target ? ` (target ${target} ms: ${(p / target).toFixed(2)}× of target)` : ''}, ${(p - nodeStart).toFixed(0)} ms above Node start-up`,
  );
  if (has('make')) {
    const m = measure('make', make);
    row.push(`make ${m.toFixed(0)} ms (podium/make ${(p / m).toFixed(1)}×)`);
  }
  if (has('snakemake')) {
    const s = measure('snakemake', snakemake);
    row.push(`snakemake ${s.toFixed(0)} ms (podium/snakemake ${(p / s).toFixed(2)}×)`);
  }
  console.log(`no-op rerun, N=${n} stages (median of ${REPEATS}): ${row.join('; ')}`);
}
