// push / pull through a shared store: a teammate with an empty cache pulls what the lock names
// and their `podium run` is all cache hits, with the same lock byte for byte.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandPipeline, Project } from '../rig.js';

const projects: Project[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const p of projects.splice(0)) p.cleanup();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const pipeline = commandPipeline({
  gen: { run: 'mkdir -p data && for i in 1 2 3; do echo "row $i" > data/$i.txt; done', outs: ['data'] },
  fit: {
    run: 'cat data/*.txt | wc -l > model.txt && echo \'{"rows": 3}\' > m.json',
    inputs: { data: 'gen' },
    outs: ['model.txt', 'm.json'],
    metrics: 'm.json',
    matrix: { env: [{ LR: '0.1' }, { LR: '0.2' }] },
  },
  report: { run: 'cat model.txt > report.txt', inputs: { fits: ['fit'] }, outs: ['report.txt'] },
});

function project(): Project {
  const p = new Project();
  projects.push(p);
  p.write('package.json', '{"name":"t"}');
  p.write('p.json', pipeline);
  return p;
}

describe('podium push / pull', () => {
  it('push from one cache, pull into an empty one: the next run is all hits, outs restored, lock byte-identical', async () => {
    const store = mkdtempSync(join(tmpdir(), 'podium-shared-'));
    dirs.push(store);
    const mine = project();
    const first = await mine.run('p.json');
    expect(first.exitCode).toBe(0);
    const lock = mine.read('p.lock.json');

    const push = await mine.cli('push', 'p.json', '--remote', store);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/pushed 4 stages of test to .*: \d+ blobs copied/);
    const again = await mine.cli('push', 'p.json', '--remote', store, '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({ copied: 0, stages: 4 });

    // The teammate: same files, their own empty cache, the store named in the project config.
    const theirs = project();
    writeFileSync(join(theirs.dir, 'p.lock.json'), lock);
    theirs.write('podium.config.json', { remote: store });
    const pull = await theirs.cli('pull', 'p.json', '--json');
    expect(pull.exitCode, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout)).toMatchObject({ direction: 'pull', stages: 4, missing: [] });
    const run = await theirs.run('p.json');
    expect(run.exitCode).toBe(0);
    expect(Object.values(run.status)).toEqual(['cached', 'cached', 'cached', 'cached']);
    expect(readFileSync(join(theirs.dir, 'p.lock.json'), 'utf8')).toBe(lock);
    expect(theirs.read('report.txt')).toBe(mine.read('report.txt'));
  });

  it('names what is missing, and needs a store', async () => {
    const store = mkdtempSync(join(tmpdir(), 'podium-shared-'));
    dirs.push(store);
    const p = project();
    const none = await p.cli('push', 'p.json', '--remote', store);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/no lock file/);
    await p.run('p.json');
    const noStore = await p.cli('pull', 'p.json');
    expect(noStore.exitCode).toBe(2);
    expect(noStore.stderr).toMatch(/no shared store named; pass --remote DIR/);
    const pull = await p.cli('pull', 'p.json', '--remote', store);
    expect(pull.exitCode).toBe(1);
    expect(pull.stdout).toMatch(/gen: no record [0-9a-f]{12} in .* \(push it first\)/);
    expect(existsSync(join(store, 'records'))).toBe(false);
  });
});
