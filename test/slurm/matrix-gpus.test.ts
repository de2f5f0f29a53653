// A 12-point matrix asking --gres=gpu:1 per job (podium.config.json) spreads over the cluster's 4
// fake GPUs: each job sees the CUDA_VISIBLE_DEVICES SLURM gave it, and podium records it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';
import { Cluster, slurmMissing, spoolResults } from './cluster.js';

const missing = slurmMissing();
if (missing) console.log(missing);

describe.skipIf(!!missing)('GPUs through --gres', () => {
  let cluster: Cluster;
  let project: Project;
  let store: string;
  beforeAll(() => {
    // 8 CPUs, 4 GPUs: the GPUs, not the cores, bound the jobs running at once.
    cluster = new Cluster(7321, { cpus: 8, gpus: 4 });
    project = new Project();
    store = mkdtempSync(join(tmpdir(), 'podium-store-'));
  });
  afterAll(() => {
    cluster?.stop();
    project?.cleanup();
    rmSync(store, { recursive: true, force: true });
  });

  it('12 points, each job one GPU, all 4 GPUs used', async () => {
    project.write('package.json', '{"name":"t"}');
    project.write('podium.config.json', { remote: store, slurm: { pollMs: 300, stages: { fit: { gres: 'gpu:1' } } } });
    project.write(
      'p.json',
      commandPipeline({
        fit: {
          run: 'echo "$CUDA_VISIBLE_DEVICES" > "gpu-$P.txt"; sleep 3',
          outs: ['gpu-${P}.txt'],
          matrix: { env: Array.from({ length: 12 }, (_, i) => ({ P: String(i) })) },
        },
      }),
    );
    const r = await project.spawn(['run', 'p.json', '--executor', 'slurm', '--json'], cluster.env);
    expect(r.exitCode, `${r.stderr}\n${cluster.log()}`).toBe(0);
    const stages = JSON.parse(String(r.stdout)).stages as Array<{ id: string; status: string }>;
    expect(stages).toHaveLength(12);
    expect(stages.every((s) => s.status === 'ran')).toBe(true);

    const results = spoolResults(join(project.dir, '.podium', 'slurm'));
    expect(results).toHaveLength(12);
    const devices = results.map((res) => res.cudaVisibleDevices as string);
    // One device per job, and every one of the four used.
    for (const d of devices) expect(d).toMatch(/^[0-3]$/);
    expect(new Set(devices)).toEqual(new Set(['0', '1', '2', '3']));
    // The stage saw the same device (command stages get it as ctx.gpu).
    for (let i = 0; i < 12; i++) expect(project.read(`gpu-${i}.txt`).trim()).toMatch(/^[0-3]$/);
    // The jobs asked for it: every job is named after a point and completed.
    expect(cluster.jobs().filter((j) => j.state === 'COMPLETED')).toHaveLength(12);
  });
});
