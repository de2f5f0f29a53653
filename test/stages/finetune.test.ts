import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

function pipeline(epochs: number, lrSteps: number[] = [], extra: Record<string, unknown> = {}): object {
  return {
    name: 'ft',
    seed: 3,
    stages: {
      images: {
        uses: 'dataset',
        params: { format: 'synthetic', classes: 3, perClass: { train: 8, val: 4, test: 2 }, size: 40 },
      },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 36 } },
      aug: {
        uses: 'augment',
        inputs: { images: 'decoded' },
        params: { level: 1, crop: 32, previewImages: 2, previewAugmentations: 2 },
      },
      train: {
        uses: 'finetune',
        inputs: { images: 'decoded', augment: 'aug' },
        params: {
          model: 'tiny',
          inputSize: 32,
          epochs,
          lrSteps,
          batchSize: 8,
          lr: 0.05,
          momentum: 0.9,
          weightDecay: 0.0001,
          backend: 'wasm',
          ...extra,
        },
      },
    },
  };
}

describe('finetune stage', () => {
  it('raising epochs continues from the earlier run, byte-identical to training the longer run from scratch', async () => {
    // The reference: three epochs from scratch, with a step at epoch 3.
    const fresh = new Project();
    try {
      fresh.write('p.json', pipeline(3, [2]));
      expect((await fresh.run()).exitCode).toBe(0);
      const reference = fresh.json('p.lock.json').stages.train.outputs;

      project = new Project();
      project.write('p.json', pipeline(2, [2]));
      expect((await project.run()).exitCode).toBe(0);
      project.write('p.json', pipeline(3, [2]));
      const longer = await project.cli('run', 'p.json', '--verbose');
      expect(longer.exitCode).toBe(0);
      expect(longer.stderr).toContain(
        'train| continuing from epoch 2 of stage train (the same recipe and learning rates so far), 3 epochs in all',
      );
      expect(longer.stderr).not.toContain('train| epoch 1/3');
      expect(project.json('p.lock.json').stages.train.outputs).toEqual(reference);

      // A schedule that differs earlier (a step at epoch 2, not 3) shares only epoch 1.
      project.write('p.json', pipeline(3, [1]));
      const other = await project.cli('run', 'p.json'); // shown without --verbose too
      expect(other.stderr).toContain('train| continuing from epoch 1 of stage train');
    } finally {
      fresh.cleanup();
    }
  });

  it('trains on wasm, keeps every epoch as a checkpoint, evaluates, and is reproducible', async () => {
    project = new Project();
    project.write('p.json', pipeline(2));
    const r = await project.run();
    expect(r.exitCode, r.stderr).toBe(0);
    const train = project.json('p.lock.json').stages.train;
    expect(Object.keys(train.outputs).sort()).toEqual(['epoch-001', 'epoch-002', 'history']);
    expect(train.metrics.epoch).toBe(2);
    // workers left out is not in the params, so not in the key: keys from before it existed hold.
    expect(train.params).not.toHaveProperty('workers');
    expect(train.metrics.valTop1).toBeGreaterThanOrEqual(0);
    expect(train.metrics.valTop3).toBe(1); // 3 classes: the top 3 always hold the label
    expect(Number.isFinite(train.metrics.loss)).toBe(true);
    const shown = await project.cli('show', 'p.json', 'train');
    expect(shown.stdout).toContain('on wasm');
    // Running alone, the stage gets every core (the threaded build uses at most 8).
    const threads = Math.min(8, availableParallelism());
    expect(shown.stdout).toContain(`wasm (simd, ${threads} thread${threads === 1 ? '' : 's'})`);
    expect(shown.stdout).toMatch(/epoch 2\/2: loss/);

    const v = await project.cli('verify', 'p.json', '--stages', 'train');
    expect(v.stdout).toContain('identical  train');
    expect(v.exitCode).toBe(0);
  });

  it('workers 2: data-parallel replicas, byte-identical when verified, and part of the key', async () => {
    project = new Project();
    project.write('p.json', pipeline(2, [], { workers: 2 }));
    const r = await project.cli('run', 'p.json', '--verbose');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/train\| data-parallel: 2 replicas × \d+ backend threads?/);
    expect(r.stderr).toMatch(/train\| data-parallel: the main thread spent [\d.]+ s on the exchange/);
    expect(project.json('p.lock.json').stages.train.params.workers).toBe(2);
    const v = await project.cli('verify', 'p.json', '--stages', 'train');
    expect(v.stdout).toContain('identical  train');
    expect(v.exitCode).toBe(0);
    project.write('p.json', pipeline(2));
    const s = await project.cli('status', 'p.json');
    expect(s.stdout + s.stderr).toContain('params.workers removed (was 2)');
  });

  it('workers > 1 with a backend that cannot run replicas is a pipeline error naming the param; nothing runs', async () => {
    project = new Project();
    project.write('p.json', pipeline(2, [], { workers: 2, backend: 'webgpu' }));
    const r = await project.cli('run', 'p.json');
    expect(r.exitCode).toBe(2);
    expect(r.stdout + r.stderr).toContain(
      'workers 2: data-parallel replicas run on the CPU backends (wasm, cpu), not webgpu; leave workers out (or 1) on this backend',
    );
    expect(r.stdout + r.stderr).toMatch(/params\/workers/);
    expect(r.stdout + r.stderr).not.toContain('ran ');
  });

  it('resumes a killed run at its last finished epoch, with the same result as an uninterrupted one', async () => {
    project = new Project();
    project.write('p.json', pipeline(3));
    const child = project.spawn(['run', 'p.json', '--verbose']);
    let killed = false;
    child.stderr?.on('data', (d: Buffer) => {
      if (!killed && d.toString().includes('epoch 1/3')) {
        killed = true;
        // The runner and its worker process: a kill of everything, as a power cut would.
        child.kill('SIGKILL');
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* not a group leader */
        }
      }
    });
    await child;
    expect(killed).toBe(true);
    const resumed = await project.cli('run', 'p.json', '--verbose');
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming after epoch [12] of 3/);
    const lockA = project.json('p.lock.json').stages.train.outputs;

    // The same pipeline in a fresh project, never interrupted.
    const fresh = new Project();
    try {
      fresh.write('p.json', pipeline(3));
      expect((await fresh.cli('run', 'p.json')).exitCode).toBe(0);
      expect(fresh.json('p.lock.json').stages.train.outputs).toEqual(lockA);
    } finally {
      fresh.cleanup();
    }
  });
});
