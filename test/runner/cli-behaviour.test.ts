// What a user expects of run's flags and keys (issue 14): --force retrains from scratch, a
// consumer's key depends only on the outputs it reads, and --dry-run does not overstate.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

/** dataset → decode → augment → a one-epoch tiny finetune, all on a few synthetic images. */
function trainPipeline(previewImages: number, epochs = 2): object {
  return {
    name: 'train',
    seed: 5,
    stages: {
      images: {
        uses: 'dataset',
        params: { format: 'synthetic', classes: 2, perClass: { train: 4, val: 2, test: 0 }, size: 40 },
      },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 36 } },
      aug: {
        uses: 'augment',
        inputs: { images: 'decoded' },
        params: { level: 1, crop: 32, previewImages, previewAugmentations: 2 },
      },
      tiny: {
        uses: 'finetune',
        inputs: { images: 'decoded', augment: 'aug' },
        params: { model: 'tiny', inputSize: 32, epochs, batchSize: 4, lr: 0.05, backend: 'wasm' },
      },
    },
  };
}

describe('keys and flags', () => {
  it("a change to an output the consumer does not read (augment's preview) does not retrain", async () => {
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
    project.write(
      'p.json',
      commandPipeline({
        a: { run: 'echo a > a.txt', outs: ['a.txt'] },
        b: { run: 'cat a.txt > b.txt', inputs: { x: 'a' }, outs: ['b.txt'] },
        c: { run: 'cat b.txt > c.txt', inputs: { x: 'b' }, outs: ['c.txt'] },
      }),
    );
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

describe('the project root', () => {
  /** The CLI run from a subfolder of the project. */
  const from = async (sub: string, ...args: string[]) => {
    const r = await execa('node', [CLI, ...args], {
      cwd: join(project.dir, sub),
      reject: false,
      env: { PODIUM_NO_REPORT: '1' },
    });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };

  it('is found from the pipeline file, whatever the working directory; looking creates nothing', async () => {
    project = new Project();
    project.write('package.json', '{"private":true}');
    project.write('pipelines/p.json', commandPipeline({ a: { run: 'echo a > out/a.txt', outs: ['out/a.txt'] } }));
    mkdirSync(join(project.dir, 'docs'));
    // Before any run: a dry run and status from a subfolder say what would run and write nothing.
    const dry = await from('pipelines', 'run', 'p.json', '--dry-run', '--json');
    expect(JSON.parse(dry.stdout).stages.map((s: { status: string }) => s.status)).toEqual(['would-run']);
    expect((await from('docs', 'status', 'pipelines/p.json')).exitCode).toBe(0);
    expect(existsSync(join(project.dir, '.podium'))).toBe(false);
    expect(existsSync(join(project.dir, 'pipelines', '.podium'))).toBe(false);
    // A run from pipelines/ uses the project's cache and writes outs relative to the project.
    expect((await from('pipelines', 'run', 'p.json')).exitCode).toBe(0);
    expect(project.read('out/a.txt')).toBe('a\n');
    expect(existsSync(join(project.dir, '.podium', 'cache'))).toBe(true);
    expect(existsSync(join(project.dir, 'pipelines', '.podium'))).toBe(false);
    // From docs/, the path as typed from the root works, and everything is cached.
    const again = await from('docs', 'run', 'pipelines/p.json', '--json');
    expect(JSON.parse(again.stdout).stages.map((s: { status: string }) => s.status)).toEqual(['cached']);
    // gc from a subfolder finds the project's lock files, so it keeps the record.
    const gc = JSON.parse((await from('docs', 'gc', '--keep-runs', '0', '--json')).stdout);
    expect(gc.removedRecords).toBe(0);
    expect(gc.lockFiles).toEqual([join(project.dir, 'pipelines', 'p.lock.json')]);
  });
});
