// A finetune job stopped mid-training (scancel here; a time limit sends the same SIGTERM) saves
// its finished epochs to the store; the next run's job resumes after them, and the result is the
// one an uninterrupted run gives, byte for byte.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Project, waitUntil } from '../rig.js';
import { Cluster, slurmMissing } from './cluster.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const missing = slurmMissing();
if (missing) console.log(missing);

describe.skipIf(!!missing)('a finetune stopped mid-way resumes in its next job', () => {
  let cluster: Cluster;
  const projects: Project[] = [];
  let store: string;
  beforeAll(() => {
    cluster = new Cluster(7361);
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
    const ci = JSON.parse(readFileSync(join(REPO, 'pipelines', 'ci-small.json'), 'utf8'));
    const { images, decoded, aug, tiny } = ci.stages;
    p.write('package.json', '{"name":"t"}');
    p.write('p.json', {
      name: 'resume',
      seed: 7,
      stages: {
        images,
        decoded,
        aug,
        tiny: { ...tiny, matrix: undefined, params: { ...tiny.params, epochs: 10, lrSteps: [6] } },
      },
    });
    return p;
  };

  it('scancel at epoch 3, run again: resumes after the saved epochs, same lock as an uninterrupted run', async () => {
    const local = project();
    expect((await local.run('p.json')).exitCode).toBe(0);

    const p = project();
    const spool = join(p.dir, '.podium', 'slurm');
    const first = p.spawn(['run', 'p.json', '--executor', 'slurm', '--remote', store], cluster.env);
    let job: string | undefined;
    const log = (id: string): string => {
      for (const k of readdirSync(spool)) {
        try {
          return readFileSync(join(spool, k, `log-${id}.txt`), 'utf8');
        } catch {
          /* not here */
        }
      }
      return '';
    };
    await waitUntil(
      () => {
        job = cluster.jobs().find((j) => j.name === 'podium:tiny' && j.state === 'RUNNING')?.id;
        return !!job && /epoch 3\/10/.test(log(job));
      },
      180_000,
      'the finetune job to finish epoch 3',
    );
    cluster.scancel(job!);
    const r1 = await first;
    expect(r1.exitCode).toBe(1);
    expect(String(r1.stderr)).toMatch(/tiny .*CANCELLED/);
    expect(log(job!)).toMatch(/saved \d+ progress entries to the store/);

    const r2 = await p.spawn(['run', 'p.json', '--executor', 'slurm', '--remote', store, '--verbose'], cluster.env);
    expect(r2.exitCode, String(r2.stderr)).toBe(0);
    const second = cluster
      .jobs()
      .filter((j) => j.name === 'podium:tiny')
      .at(-1)!.id;
    expect(second).not.toBe(job);
    const resumed = /resuming after epoch (\d+) of 10/.exec(log(second));
    expect(resumed, log(second)).not.toBeNull();
    expect(Number(resumed![1])).toBeGreaterThanOrEqual(3);
    expect(p.read('p.lock.json')).toBe(local.read('p.lock.json'));
  });
});
