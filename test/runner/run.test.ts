import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

/** a → b → d, a → c → d, e alone; each stage appends its id to runs.log when it executes. */
function diamond(overrides: { aRun?: string; cParam?: string } = {}): object {
  const log = (id: string): string => `echo ${id} >> runs.log`;
  return commandPipeline({
    a: { run: overrides.aRun ?? `${log('a')}; echo A > a.txt`, outs: ['a.txt'] },
    b: { run: `${log('b')}; cat a.txt > b.txt; echo B >> b.txt`, inputs: { x: 'a' }, outs: ['b.txt'] },
    c: {
      run: `${log('c')}; cat a.txt > c.txt; echo ${overrides.cParam ?? 'C'} >> c.txt`,
      inputs: { x: 'a' },
      outs: ['c.txt'],
    },
    d: { run: `${log('d')}; cat b.txt c.txt > d.txt`, inputs: { x: ['b', 'c'] }, outs: ['d.txt'] },
    e: { run: `${log('e')}; echo E > e.txt`, outs: ['e.txt'] },
  });
}

const executed = (): string[] =>
  existsSync(join(project.dir, 'runs.log')) ? project.read('runs.log').trim().split('\n').filter(Boolean) : [];
const clearLog = (): void => rmSync(join(project.dir, 'runs.log'), { force: true });

describe('podium run', () => {
  it('runs everything once, then nothing; --json has the promised shape', async () => {
    project = new Project();
    project.write('p.json', diamond());
    const first = await project.run();
    expect(first.exitCode).toBe(0);
    expect(first.status).toEqual({ a: 'ran', b: 'ran', c: 'ran', e: 'ran', d: 'ran' });
    expect(executed().sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(project.read('d.txt')).toBe('A\nB\nA\nC\n');
    for (const s of first.out.stages)
      expect(Object.keys(s).sort()).toEqual(['durationMs', 'id', 'key', 'kind', 'reason', 'status']);
    expect(first.out.pipeline).toBe('test');

    clearLog();
    const second = await project.run();
    expect(second.status).toEqual({ a: 'cached', b: 'cached', c: 'cached', e: 'cached', d: 'cached' });
    expect(executed()).toEqual([]);
  });

  it('changing one param reruns exactly that stage and its descendants', async () => {
    project = new Project();
    project.write('p.json', diamond());
    await project.run();
    clearLog();
    project.write('p.json', diamond({ cParam: 'C2' }));
    const r = await project.run();
    expect(r.status).toEqual({ a: 'cached', b: 'cached', c: 'ran', e: 'cached', d: 'ran' });
    expect(executed().sort()).toEqual(['c', 'd']);
    expect(project.read('d.txt')).toBe('A\nB\nA\nC2\n');
  });

  it('early cutoff: a stage that re-runs with byte-identical outputs leaves its descendants cached', async () => {
    project = new Project();
    project.write('p.json', diamond());
    await project.run();
    clearLog();
    // A different command (so a new key) that writes the same a.txt.
    project.write('p.json', diamond({ aRun: 'echo a >> runs.log; printf "A\\n" > a.txt' }));
    const r = await project.run();
    expect(r.status).toEqual({ a: 'ran', b: 'cached', c: 'cached', e: 'cached', d: 'cached' });
    expect(executed()).toEqual(['a']);
  });

  it('a failed stage fails its descendants as skipped while independent stages finish', async () => {
    project = new Project();
    project.write('p.json', diamond({ cParam: 'C; echo broken >&2; exit 3' }));
    const r = await project.run('p.json', '--jobs', '1');
    expect(r.exitCode).toBe(1);
    expect(r.status).toEqual({ a: 'ran', b: 'ran', c: 'failed', e: 'ran', d: 'skipped' });
    const c = r.out.stages.find((s: { id: string }) => s.id === 'c');
    expect(c.failure).toEqual({ reason: 'stage' });
    expect(c.reason).toBe('command exited with code 3: broken');
    expect(r.out.stages.find((s: { id: string }) => s.id === 'd').reason).toBe('upstream stage c failed');
    expect(existsSync(join(project.dir, 'p.lock.json'))).toBe(false);
    // The successes are cached: fixing c reruns only c and d.
    clearLog();
    project.write('p.json', diamond());
    const fixed = await project.run();
    expect(fixed.exitCode).toBe(0);
    expect(executed().sort()).toEqual(['c', 'd']);
  });

  it('restores outs from the cache when they are missing or changed on disk', async () => {
    project = new Project();
    project.write('p.json', diamond());
    await project.run();
    clearLog();
    rmSync(join(project.dir, 'b.txt'));
    writeFileSync(join(project.dir, 'd.txt'), 'tampered');
    const r = await project.cli('run', 'p.json');
    expect(r.exitCode).toBe(0);
    expect(executed()).toEqual([]);
    expect(project.read('b.txt')).toBe('A\nB\n');
    expect(project.read('d.txt')).toBe('A\nB\nA\nC\n');
    expect(r.stderr).toContain('restored b.txt');
    expect(r.stderr).toContain('restored d.txt');
  });

  it('hashes deps by content: touching a dep without changing it reruns nothing', async () => {
    project = new Project();
    project.write('data/x.csv', 'a,b\n1,2\n');
    project.write(
      'p.json',
      commandPipeline({
        prep: { run: 'echo prep >> runs.log; wc -l < data/x.csv > n.txt', deps: ['data'], outs: ['n.txt'] },
      }),
    );
    await project.run();
    clearLog();
    project.write('data/x.csv', 'a,b\n1,2\n');
    expect((await project.run()).status).toEqual({ prep: 'cached' });
    project.write('data/x.csv', 'a,b\n1,2\n3,4\n');
    expect((await project.run()).status).toEqual({ prep: 'ran' });
    expect(project.read('n.txt').trim()).toBe('3');
  });

  it('--dry-run says what would run and why, and writes nothing', async () => {
    project = new Project();
    project.write('p.json', diamond());
    await project.run();
    project.write('p.json', diamond({ cParam: 'C2' }));
    clearLog();
    const lockBefore = project.read('p.lock.json');
    const r = await project.run('p.json', '--dry-run');
    // d runs only if c's new command writes other bytes: early cutoff decides, so "may run".
    expect(r.status).toEqual({ a: 'cached', b: 'cached', c: 'would-run', e: 'cached', d: 'may-run' });
    expect(r.out.stages.find((s: { id: string }) => s.id === 'c').reason).toMatch(/^params\.run changed /);
    expect(r.out.stages.find((s: { id: string }) => s.id === 'd').reason).toBe('if the output of c changes');
    expect(executed()).toEqual([]);
    expect(project.read('p.lock.json')).toBe(lockBefore);
  });

  it('--only runs a stage and what it needs; --force and --from re-execute', async () => {
    project = new Project();
    project.write('p.json', diamond());
    const only = await project.run('p.json', '--only', 'b');
    expect(only.status).toEqual({ a: 'ran', b: 'ran' });
    clearLog();
    const forced = await project.run('p.json', '--force', 'a');
    expect(forced.status).toEqual({ a: 'ran', b: 'cached', c: 'ran', e: 'ran', d: 'ran' });
    clearLog();
    const from = await project.run('p.json', '--from', 'c');
    expect(from.status).toEqual({ a: 'cached', b: 'cached', c: 'ran', d: 'ran' });
    expect(executed().sort()).toEqual(['c', 'd']);
    expect((await project.cli('run', 'p.json', '--only', 'zzz')).exitCode).toBe(2);
  });

  it('a matrix stage runs once per point and its consumer receives all of them', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        train: {
          run: 'echo "$LR" > "model-$LR.txt"',
          env: { LR: '0' },
          outs: [],
          matrix: { env: [{ LR: '0.1' }, { LR: '0.01' }] },
        },
        fuse: { run: 'cat model-*.txt | sort > fused.txt', inputs: { models: 'train' }, outs: ['fused.txt'] },
      }),
    );
    const r = await project.run();
    expect(r.status).toEqual({ 'train@env={"LR":"0.1"}': 'ran', 'train@env={"LR":"0.01"}': 'ran', fuse: 'ran' });
    expect(project.read('fused.txt')).toBe('0.01\n0.1\n');
    const lock = project.json('p.lock.json');
    expect(lock.stages.fuse.inputs.models).toHaveLength(2);
  });

  it('--gpus gives each slot its own CUDA_VISIBLE_DEVICES', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        s1: { run: 'sleep 0.3; echo "$CUDA_VISIBLE_DEVICES" > g1.txt', outs: ['g1.txt'] },
        s2: { run: 'sleep 0.3; echo "$CUDA_VISIBLE_DEVICES" > g2.txt', outs: ['g2.txt'] },
      }),
    );
    expect((await project.run('p.json', '--gpus', '2,3')).exitCode).toBe(0);
    expect([project.read('g1.txt').trim(), project.read('g2.txt').trim()].sort()).toEqual(['2', '3']);
  });
});
