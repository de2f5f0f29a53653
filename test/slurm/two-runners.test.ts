// Two runners, each with its own LMDB and spool, sharing one store: run at the same time they
// never leave a damaged or half-written file in the store and agree on the lock; a third runner
// afterwards reuses what they published and submits no job at all.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../cache/canonical.js';
import { DirRemoteStore } from '../../cache/remote-store.js';
import { commandPipeline, Project } from '../rig.js';
import { Cluster, slurmMissing } from './cluster.js';

const missing = slurmMissing();
if (missing) console.log(missing);

const pipeline = commandPipeline({
  data: { run: 'mkdir -p d && for i in $(seq 1 50); do yes "row $i" | head -c 20000 > d/$i.bin; done', outs: ['d'] },
  fit: {
    run: 'cat d/*.bin | wc -c > "fit-$P.txt"; echo "$P" >> "fit-$P.txt"',
    inputs: { d: 'data' },
    outs: ['fit-${P}.txt'],
    matrix: { env: [{ P: '1' }, { P: '2' }, { P: '3' }, { P: '4' }] },
  },
  best: { run: 'cat fit-*.txt > best.txt', inputs: { fits: ['fit'] }, outs: ['best.txt'] },
});

describe.skipIf(!!missing)('runners sharing one store', () => {
  let cluster: Cluster;
  const projects: Project[] = [];
  let store: string;
  beforeAll(() => {
    cluster = new Cluster(7351, { cpus: 8 });
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

  it('two at once never corrupt the store and agree; a third reuses their blobs and records', async () => {
    const [a, b] = [project(), project()];
    const [ra, rb] = await Promise.all(
      [a, b].map((p) => p.spawn(['run', 'p.json', '--executor', 'slurm'], cluster.env)),
    );
    expect(ra!.exitCode, String(ra!.stderr)).toBe(0);
    expect(rb!.exitCode, String(rb!.stderr)).toBe(0);
    expect(a.read('p.lock.json')).toBe(b.read('p.lock.json'));

    // Every file in the store is whole, and no temporary file is left.
    const remote = new DirRemoteStore(store);
    let blobs = 0;
    for await (const d of remote.list()) {
      expect(sha256((await remote.get(d))!)).toBe(d);
      blobs++;
    }
    expect(blobs).toBeGreaterThan(50);
    for (const fan of readdirSync(join(store, 'blobs')))
      expect(readdirSync(join(store, 'blobs', fan)).filter((n) => n.startsWith('.'))).toEqual([]);
    const lock = a.json('p.lock.json') as { stages: Record<string, { key: Digest }> };
    for (const { key } of Object.values(lock.stages)) expect((await remote.getRecord(key))?.key).toBe(key);

    // A third runner, empty LMDB: every stage comes from the store, no job is submitted.
    const jobsBefore = cluster.jobs().length;
    const c = project();
    const rc = await c.spawn(['run', 'p.json', '--executor', 'slurm'], cluster.env);
    expect(rc.exitCode, String(rc.stderr)).toBe(0);
    expect(cluster.jobs()).toHaveLength(jobsBefore);
    expect(String(rc.stderr).match(/found in the shared store/g)).toHaveLength(6);
    expect(c.read('p.lock.json')).toBe(a.read('p.lock.json'));
    expect(c.read('best.txt')).toBe(a.read('best.txt'));
  });
});
