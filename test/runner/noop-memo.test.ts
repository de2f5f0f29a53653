import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

/** Files written within the last 2 s are never trusted by the memo; age them instead of sleeping. */
function age(...rels: string[]): void {
  const past = new Date(Date.now() - 60_000);
  for (const rel of rels) utimesSync(join(project.dir, rel), past, past);
}

const pipeline = (n = '1'): object =>
  commandPipeline({
    prep: { run: `cat data/in.txt > prep.txt; echo ${n} >> prep.txt`, deps: ['data'], outs: ['prep.txt'] },
    use: { run: 'cat prep.txt > use.txt', inputs: { x: 'prep' }, outs: ['use.txt'] },
  });

describe('the no-op memo', () => {
  it('skips analysis only while nothing changed, and never hides a change', async () => {
    project = new Project();
    project.write('data/in.txt', 'a\n');
    project.write('p.json', pipeline());
    const all = ['data/in.txt', 'data', 'prep.txt', 'use.txt', 'p.lock.json'];
    expect((await project.run()).status).toEqual({ prep: 'ran', use: 'ran' });
    age(...all);
    const full = await project.cli('run', 'p.json');
    expect(full.stderr).not.toContain('nothing to do');
    const noop = await project.cli('run', 'p.json');
    expect(noop.stderr).toContain('test: 2 cached (nothing to do');
    const json = await project.run();
    expect(json.status).toEqual({ prep: 'cached', use: 'cached' });

    // A dep changes: content differs, even with an old mtime the size/mtime/inode differ.
    writeFileSync(join(project.dir, 'data/in.txt'), 'bb\n');
    age('data/in.txt');
    expect((await project.run()).status).toEqual({ prep: 'ran', use: 'ran' });
    expect(project.read('use.txt')).toBe('bb\n1\n');

    // A file is added to a dep folder.
    age(...all);
    await project.run();
    expect((await project.cli('run', 'p.json')).stderr).toContain('nothing to do');
    project.write('data/more.txt', 'x');
    expect((await project.run()).status).toEqual({ prep: 'ran', use: 'cached' });

    // An out is deleted: the full path restores it.
    age(...all, 'data/more.txt');
    await project.run();
    rmSync(join(project.dir, 'use.txt'));
    const restored = await project.cli('run', 'p.json');
    expect(restored.stderr).toContain('restored use.txt');
    expect(project.read('use.txt')).toBe('bb\n1\n');

    // The pipeline changes.
    age(...all, 'data/more.txt');
    await project.run();
    project.write('p.json', pipeline('2'));
    expect((await project.run()).status).toEqual({ prep: 'ran', use: 'ran' });

    // The cache loses a record (gc, a corrupt or tampered entry): every memo is forgotten.
    age(...all, 'data/more.txt');
    await project.run();
    expect((await project.cli('run', 'p.json')).stderr).toContain('nothing to do');
    const lock = project.json('p.lock.json');
    const { LmdbStore } = await import('../../cache/lmdb-store.js');
    const store = new LmdbStore(join(project.dir, '.podium/cache'));
    store.deleteRecord(lock.stages.use.key);
    await store.close();
    expect((await project.run()).status).toEqual({ prep: 'cached', use: 'ran' });
  });
});
