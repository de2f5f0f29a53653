// What a user expects of run's flags and keys (issue 14): --force retrains from scratch, a
// consumer's key depends only on the outputs it reads, and --dry-run does not overstate.
import { afterEach, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

/** dataset → decode → augment → a one-epoch tiny finetune, all on a few synthetic images. */
function trainPipeline(previewImages: number, epochs = 2): object {
  return {
    name: 'train', seed: 5,
    stages: {
      images: { uses: 'dataset', params: { format: 'synthetic', classes: 2, perClass: { train: 4, val: 2, test: 0 }, size: 40 } },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 36 } },
      aug: { uses: 'augment', inputs: { images: 'decoded' }, params: { level: 1, crop: 32, previewImages, previewAugmentations: 2 } },
      tiny: { uses: 'finetune', inputs: { images: 'decoded', augment: 'aug' }, params: { model: 'tiny', inputSize: 32, epochs, batchSize: 4, lr: 0.05, backend: 'wasm' } },
    },
  };
}

describe('keys and flags', () => {
  it('a change to an output the consumer does not read (augment\'s preview) does not retrain', async () => {
    project = new Project();
    project.write('p.json', trainPipeline(4));
    expect((await project.run()).exitCode).toBe(0);
    project.write('p.json', trainPipeline(2));
    const r = await project.run();
    expect(r.exitCode).toBe(0);
    expect(r.status).toEqual({ images: 'cached', decoded: 'cached', aug: 'ran', tiny: 'cached' });
  });

  it('--force retrains from scratch instead of resuming from saved progress', async () => {
    project = new Project();
    project.write('p.json', trainPipeline(2));
    expect((await project.run()).exitCode).toBe(0);
    const r = await project.cli('run', 'p.json', '--force', 'tiny', '--verbose');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toContain('resuming after epoch');
    expect(r.stderr).toContain('tiny| epoch 1/2');
  });

  it('--dry-run says "would run" for what certainly runs and "may run" for what depends on an early cutoff', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({
      a: { run: 'echo a > a.txt', outs: ['a.txt'] },
      b: { run: 'cat a.txt > b.txt', inputs: { x: 'a' }, outs: ['b.txt'] },
      c: { run: 'cat b.txt > c.txt', inputs: { x: 'b' }, outs: ['c.txt'] },
    }));
    expect((await project.run()).exitCode).toBe(0);
    const dry = await project.run('p.json', '--force', 'a', '--dry-run');
    expect(dry.status).toEqual({ a: 'would-run', b: 'may-run', c: 'may-run' });
    expect(dry.out.stages[1].reason).toBe('if the output of a changes');
    const human = await project.cli('run', 'p.json', '--force', 'a', '--dry-run');
    expect(human.stderr).toContain('1 would-run, 2 may-run');
    // The real run: a re-executes with the same bytes, so b and c stay cached.
    expect((await project.run('p.json', '--force', 'a')).status).toEqual({ a: 'ran', b: 'cached', c: 'cached' });
  });
});
