// pipelines/ci-small.json with --executor slurm: every stage a job, blobs only through the shared
// store, no job given a path to the runner's LMDB, and the lock byte-identical to the one the
// local executor writes for the same pipeline.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirRemoteStore } from '../../cache/remote-store.js';
import type { Digest } from '../../cache/canonical.js';
import { Project } from '../rig.js';
import { Cluster, slurmMissing, spoolResults } from './cluster.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const missing = slurmMissing();
if (missing) console.log(missing);

describe.skipIf(!!missing)('ci-small on a one-node SLURM', () => {
  let cluster: Cluster;
  let project: Project;
  let local: Project;
  let store: string;
  beforeAll(() => {
    cluster = new Cluster(7311);
    project = new Project();
    local = new Project();
    store = mkdtempSync(join(tmpdir(), 'podium-store-'));
  });
  afterAll(() => {
    cluster?.stop();
    project?.cleanup();
    local?.cleanup();
    rmSync(store, { recursive: true, force: true });
  });

  it('runs every stage as a job and writes the same lock as the local executor', async () => {
    for (const p of [project, local]) {
      p.write('package.json', '{"name":"t"}');
      p.write('pipelines/ci-small.json', readFileSync(join(REPO, 'pipelines', 'ci-small.json'), 'utf8'));
    }
    const here = await local.spawn(['run', 'pipelines/ci-small.json']);
    expect(here.exitCode, String(here.stderr)).toBe(0);
    const runnerCache = join(project.dir, 'runner-cache');
    const r = await project.spawn(
      ['run', 'pipelines/ci-small.json', '--executor', 'slurm', '--remote', store, '--cache', runnerCache, '--json'],
      cluster.env,
    );
    expect(r.exitCode, `${r.stderr}\n${cluster.log()}`).toBe(0);
    const stages = JSON.parse(String(r.stdout)).stages as Array<{ id: string; status: string }>;
    expect(stages.map((s) => s.status)).toEqual(stages.map(() => 'ran'));

    // Byte for byte the local executor's lock.
    expect(project.read('pipelines/ci-small.lock.json')).toBe(local.read('pipelines/ci-small.lock.json'));

    // One completed job per stage, named after it.
    const jobs = cluster.jobs();
    expect(jobs.map((j) => j.name).sort()).toEqual(stages.map((s) => `podium:${s.id}`).sort());
    expect(new Set(jobs.map((j) => j.state))).toEqual(new Set(['COMPLETED']));

    // Each job ran against its own scratch cache, and nothing it was given names the runner's.
    const spool = join(project.dir, '.podium', 'slurm');
    const results = spoolResults(spool);
    expect(results).toHaveLength(stages.length);
    for (const res of results) {
      expect(res.ok).toBe(true);
      expect(res.scratch.startsWith(runnerCache)).toBe(false);
      expect(jobs.map((j) => j.id)).toContain(res.slurmJobId);
    }
    for (const key of readdirSync(spool).filter((k) => /^[0-9a-f]{64}$/.test(k))) {
      for (const f of ['job.sh', 'spec.json'])
        expect(readFileSync(join(spool, key, f), 'utf8')).not.toContain(runnerCache);
      expect(readFileSync(join(spool, key, 'job.sh'), 'utf8')).toContain('PODIUM_CACHE=/dev/null/');
    }
    // The scratch caches are gone; the default cache of the project was never made.
    for (const res of results) expect(existsSync(res.scratch)).toBe(false);
    expect(existsSync(join(project.dir, '.podium', 'cache'))).toBe(false);

    // Every output reached the runner through the store, whole.
    const remote = new DirRemoteStore(store);
    const lock = project.json('pipelines/ci-small.lock.json') as {
      stages: Record<string, { outputs: Record<string, Digest> }>;
    };
    for (const st of Object.values(lock.stages))
      for (const d of Object.values(st.outputs)) expect((await remote.get(d))?.length).toBeGreaterThan(0);

    // show names the job and node.
    const show = await project.cli('show', 'pipelines/ci-small.json', 'fused', '--cache', runnerCache);
    expect(show.stdout).toMatch(/^where +slurm job \d+ on \S+/m);
    // So does the report's run table, for every stage.
    const html = join(project.dir, 'report.html');
    const report = await project.cli('report', 'pipelines/ci-small.json', '--cache', runnerCache, '--out', html);
    expect(report.exitCode, String(report.stderr)).toBe(0);
    const jobCells = readFileSync(html, 'utf8').match(/<td>slurm job \d+ on [^<]+<\/td>/g) ?? [];
    expect(jobCells).toHaveLength(stages.length);

    // Everything cached now: a second run submits nothing.
    const again = await project.spawn(
      ['run', 'pipelines/ci-small.json', '--executor', 'slurm', '--remote', store, '--cache', runnerCache],
      cluster.env,
    );
    expect(again.exitCode).toBe(0);
    expect(cluster.jobs()).toHaveLength(jobs.length);
  });
});
