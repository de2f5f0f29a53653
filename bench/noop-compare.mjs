// bench/noop-compare: the no-op `podium run` of 1000 stages, two or more builds of the CLI timed
// interleaved on the same machine (one run of each in turn, 25 rounds), so load changes hit every
// build alike; bench/runner-noop.mjs times one build at a time. Each build gets its own project
// folder, since builds may record different option strings in the no-op memo.
// Usage: node bench/noop-compare.mjs <old>/dist/runner/cli.js dist/runner/cli.js
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
const clis = process.argv.slice(2).map((c) => resolve(c));
const stages = {};
for (let i = 0; i < 1000; i++)
  stages[`s${i}`] = { uses: 'command', params: { run: `echo ${i} > out/${i}.txt`, outs: [`out/${i}.txt`] } };
stages.all = {
  uses: 'command',
  inputs: { parts: Object.keys(stages) },
  params: { run: 'cat out/*.txt | wc -l > all.txt', outs: ['all.txt'] },
};
// One project per build: builds may record different option strings in the memo.
const dirs = clis.map((c) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-noop-'));
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ name: 'noop-1000', stages }));
  mkdirSync(join(dir, 'out'));
  execFileSync('node', [c, 'run', 'p.json'], {
    cwd: dir,
    stdio: 'ignore',
    env: { ...process.env, PODIUM_NO_REPORT: '1' },
  });
  return dir;
});
spawnSync('sleep', ['2.1']);
clis.forEach((c, i) => execFileSync('node', [c, 'run', 'p.json'], { cwd: dirs[i], stdio: 'ignore' }));
const times = clis.map(() => []);
console.log(
  `load average before ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
for (let r = 0; r < 25; r++)
  clis.forEach((c, i) => {
    const t0 = performance.now();
    const p = spawnSync('node', [c, 'run', 'p.json'], { cwd: dirs[i], encoding: 'utf8' });
    times[i].push(performance.now() - t0);
    if (p.status !== 0 || !/nothing to do/.test(p.stderr)) throw new Error(`${c}: ${p.stderr}`);
  });
clis.forEach((c, i) => {
  const t = times[i].sort((a, b) => a - b);
  console.log(
    `${c}: median ${t[12].toFixed(1)} ms, p25 ${t[6].toFixed(1)}, p75 ${t[18].toFixed(1)} (25 runs, interleaved)`,
  );
});
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
for (const d of dirs) rmSync(d, { recursive: true, force: true });
