// Killing `podium run` while its jobs run, and another run taking over: the jobs still queued or
// running are adopted (their ids are in the spool beside their logs), none is submitted twice,
// and the lock equals an uninterrupted run's. Ctrl-C without a terminal leaves them running and
// says so; --cancel-on-interrupt cancels them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, commandPipeline, Project, waitUntil } from '../rig.js';
import { Cluster, slurmMissing } from './cluster.js';

const missing = slurmMissing();
if (missing) console.log(missing);

const pipeline = commandPipeline({
  prep: { run: 'echo 42 > seed.txt', outs: ['seed.txt'] },
  fit: {
    run: 'sleep 6; cat seed.txt > "fit-$P.txt"; echo "$P" >> "fit-$P.txt"',
    inputs: { s: 'prep' },
    outs: ['fit-${P}.txt'],
    matrix: { env: [{ P: 'a' }, { P: 'b' }, { P: 'c' }] },
  },
  pick: { run: 'cat fit-*.txt > pick.txt', inputs: { fits: ['fit'] }, outs: ['pick.txt'] },
});

describe.skipIf(!!missing)('adopting jobs after an interrupted run', () => {
  let cluster: Cluster;
  const projects: Project[] = [];
  let store: string;
  beforeAll(() => {
    cluster = new Cluster(7341, { cpus: 8 });
    store = mkdtempSync(join(tmpdir(), 'podium-store-'));
  });
  afterAll(() => {
    cluster?.stop();
    for (const p of projects) p.cleanup();
    rmSync(store, { recursive: true, force: true });
  });

  const project = (): Project => {
    const p = new Project();
    projects.push(p);
    p.write('package.json', '{"name":"t"}');
    p.write('podium.config.json', { remote: store, slurm: { pollMs: 300 } });
    p.write('p.json', pipeline);
    return p;
  };
  const running = (name: RegExp, n: number) => (): boolean =>
    cluster.jobs().filter((j) => name.test(j.name) && j.state === 'RUNNING').length === n;

  it('kill -9 mid-way, run again: running jobs adopted, none submitted twice, the same lock', async () => {
    const local = project();
    expect((await local.run('p.json')).exitCode).toBe(0);

    const p = project();
    const first = p.spawn(['run', 'p.json', '--executor', 'slurm'], cluster.env);
    await waitUntil(running(/^podium:fit@/, 3), 60_000, 'the three fit jobs to run');
    const before = cluster.jobs().length;
    // A second runner on the same cache waits on the leases, which name the jobs; it takes over
    // once the first is killed.
    const secondRun = p.spawn(['run', 'p.json', '--executor', 'slurm'], cluster.env);
    let waiting = '';
    secondRun.stderr!.on('data', (b: Buffer) => {
      waiting += b.toString();
    });
    await waitUntil(
      () =>
        (waiting.match(/waiting for stage fit@\S+ of \S*p\.json \(slurm job \d+\) held by pid/g)?.length ?? 0) === 3,
      30_000,
      'the second runner to wait for the three jobs',
    );
    process.kill(first.pid!, 'SIGKILL');
    await first;
    const second = await secondRun;
    expect(second.exitCode, String(second.stderr)).toBe(0);
    expect(String(second.stderr).match(/adopted slurm job \d+/g)).toHaveLength(3);
    // Only `pick` was submitted after the kill; every stage ran as exactly one job.
    const jobs = cluster.jobs().slice(-5);
    expect(cluster.jobs()).toHaveLength(before + 1);
    expect(jobs.map((j) => j.name.replace(/"/g, '')).sort()).toEqual([
      'podium:fit@env={P:a}',
      'podium:fit@env={P:b}',
      'podium:fit@env={P:c}',
      'podium:pick',
      'podium:prep',
    ]);
    expect(p.read('p.lock.json')).toBe(local.read('p.lock.json'));
  });

  it('Ctrl-C without a terminal leaves the jobs running and says so; --cancel-on-interrupt cancels them', async () => {
    const p = project();
    p.write('p.json', { ...pipeline, seed: 2 });
    const first = p.spawn(['run', 'p.json', '--executor', 'slurm'], cluster.env);
    await waitUntil(running(/^podium:fit@/, 3), 60_000, 'the three fit jobs to run');
    first.kill('SIGINT');
    const r1 = await first;
    expect(r1.exitCode).toBe(130);
    expect(String(r1.stderr)).toMatch(
      /left 3 slurm jobs queued or running: \d+ \d+ \d+; `podium run` again adopts them/,
    );
    expect(cluster.jobs().filter((j) => j.name.startsWith('podium:fit@') && j.state === 'RUNNING')).toHaveLength(3);

    const second = p.spawn(['run', 'p.json', '--executor', 'slurm', '--cancel-on-interrupt'], cluster.env);
    // Give it time to find the three tickets and adopt the jobs.
    await new Promise((res) => setTimeout(res, 2500));
    expect(alive(second.pid!)).toBe(true);
    second.kill('SIGINT');
    const r2 = await second;
    expect(r2.exitCode).toBe(130);
    expect(String(r2.stderr)).toMatch(/adopted slurm job/);
    expect(String(r2.stderr)).toMatch(/cancelled 3 slurm jobs/);
    await waitUntil(
      () => cluster.jobs().filter((j) => j.name.startsWith('podium:fit@') && j.state === 'CANCELLED').length === 3,
      30_000,
      'the jobs to be cancelled',
    );
  });
});
