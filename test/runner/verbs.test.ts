import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

const twoStage = (lr: string, extra: Record<string, string> = {}): object =>
  commandPipeline({
    prep: { run: 'cp data/raw.csv prep.csv', deps: ['data/raw.csv'], outs: ['prep.csv'] },
    train: {
      run: `echo "lr=${lr}" > model.txt; cat prep.csv >> model.txt; echo '{"acc": ${extra.acc ?? '0.5'}}' > metrics.json`,
      inputs: { data: 'prep' },
      outs: ['model.txt', 'metrics.json'],
      metrics: 'metrics.json',
    },
  });

describe('status', () => {
  it('says so on stderr when it finds a corrupt record, and leaves it for the next run to repair', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo s > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const key = project.json('p.lock.json').stages.s.key as string;
    const cachePath = join(project.dir, '.podium/cache');
    const env = open({ path: cachePath, maxDbs: 16 });
    await env.openDB({ name: 'records' }).put(key, { not: 'a record' });
    await env.close();
    const warning = `warning: cache record ${key.slice(0, 12)} is corrupt (key is not a digest); treated as missing: the next run recomputes it, podium gc removes it`;
    const count = (text: string): number => text.split('\n').filter((l) => l === warning).length;
    const r = await project.cli('status', 'p.json');
    expect(count(r.stderr)).toBe(1);
    expect(r.stdout).not.toContain('warning');
    expect(r.stdout).toMatch(/test: 0 fresh, 1 stale/);
    // Every verb that reads the record says so, once; none of them removes it.
    for (const verb of [
      ['show', 'p.json', 's'],
      ['gc', '--dry-run'],
      ['status', 'p.json', '--json'],
    ]) {
      const v = await project.cli(...verb);
      expect(count(v.stderr), `podium ${verb.join(' ')}: ${v.stderr}`).toBe(1);
    }
    const raw = open({ path: cachePath, maxDbs: 16 });
    expect(raw.openDB({ name: 'records' }).get(key)).toEqual({ not: 'a record' });
    await raw.close();

    // The run that recomputes it (not a no-op: the memo cannot vouch for a corrupt record) overwrites it.
    const run = await project.run();
    expect(run.status).toEqual({ s: 'ran' });
    expect(count(run.stderr)).toBe(1);
    const after = await project.cli('status', 'p.json');
    expect(after.stderr).toBe('');
    expect(after.stdout).toMatch(/test: 1 fresh, 0 stale/);
  });

  it('says why each stage is stale: params, deps, inputs, not in cache', async () => {
    project = new Project();
    project.write('data/raw.csv', 'x\n1\n');
    project.write('p.json', twoStage('0.01'));
    let s = JSON.parse((await project.cli('status', 'p.json', '--json')).stdout);
    expect(s.stages.map((x: { reasons: string[] }) => x.reasons)).toEqual([
      ['new stage, not in cache'],
      ['input "data" is stale (stage prep)'],
    ]);
    await project.run();

    project.write('p.json', twoStage('0.005'));
    s = JSON.parse((await project.cli('status', 'p.json', '--json')).stdout);
    expect(s.stages[0]).toMatchObject({ id: 'prep', status: 'fresh', reasons: [] });
    expect(s.stages[1].status).toBe('stale');
    expect(s.stages[1].reasons[0]).toMatch(/^params\.run changed ".*lr=0\.01.*" → ".*lr=0\.005.*"$/);

    project.write('p.json', twoStage('0.01'));
    project.write('data/raw.csv', 'x\n2\n');
    s = JSON.parse((await project.cli('status', 'p.json', '--json')).stdout);
    expect(s.stages[0].reasons).toEqual(['deps file data/raw.csv changed']);
    await project.run('p.json', '--only', 'prep');
    const text = (await project.cli('status', 'p.json')).stdout;
    expect(text).toContain('stale  train: input "data" changed (stage prep)');
  });
});

describe('diff', () => {
  it('compares two lock files, a git revision, and the current cache state', async () => {
    project = new Project();
    project.write('data/raw.csv', 'x\n1\n');
    project.write('p.json', twoStage('0.01'));
    await project.run();
    const git = (...a: string[]) => execa('git', a, { cwd: project.dir });
    await git('init', '-q');
    await git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'one', '--allow-empty');
    await git('add', 'p.lock.json');
    await git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'lock');
    writeFileSync(join(project.dir, 'old.lock.json'), project.read('p.lock.json'));

    project.write('p.json', twoStage('0.02', { acc: '0.75' }));
    // Before running: the current state differs in params only; outputs are not known yet.
    const pending = JSON.parse((await project.cli('diff', 'p.lock.json', '--json')).stdout);
    expect(pending.stages.map((s: { id: string }) => s.id)).toEqual(['train']);

    await project.run();
    const vsFile = JSON.parse((await project.cli('diff', 'old.lock.json', 'p.lock.json', '--json')).stdout);
    expect(vsFile.stages).toHaveLength(1);
    const train = vsFile.stages[0];
    expect(train.id).toBe('train');
    expect(train.params[0]).toMatch(/^params\.run changed/);
    expect(train.outputs.map((o: { name: string }) => o.name)).toEqual(['metrics.json', 'model.txt']);
    expect(train.metrics).toEqual([{ name: 'acc', a: 0.5, b: 0.75, delta: 0.25 }]);

    const vsRev = await project.cli('diff', 'p.lock.json', 'HEAD');
    expect(vsRev.exitCode).toBe(0);
    expect(vsRev.stdout).toContain('~ train');
    expect(vsRev.stdout).toContain('output model.txt:');
    expect(vsRev.stdout).toContain('metric acc: 0.5 → 0.75 (+0.25)');
    expect((await project.cli('diff', 'p.lock.json', 'no-such-rev')).exitCode).toBe(2);
    expect((await project.cli('diff', 'p.lock.json')).stdout).toContain('no differences');
  });
});

describe('verify', () => {
  it('passes on a deterministic pipeline and leaves the workspace as locked', async () => {
    project = new Project();
    project.write('data/raw.csv', 'x\n1\n');
    project.write('p.json', twoStage('0.01'));
    await project.run();
    const r = await project.cli('verify', 'p.json');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('reproducible (2 stages byte-identical)');
  });

  it('catches a nondeterministic command', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        fixed: { run: 'echo same > same.txt', outs: ['same.txt'] },
        clock: { run: 'date +%s%N > out.txt', outs: ['out.txt'] },
      }),
    );
    await project.run();
    const locked = project.read('out.txt');
    const r = await project.cli('verify', 'p.json', '--json');
    expect(r.exitCode).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.stages.map((s: { id: string; result: string }) => `${s.id}:${s.result}`)).toEqual([
      'fixed:identical',
      'clock:different',
    ]);
    expect(report.stages[1].differing[0].name).toBe('out.txt');
    expect(project.read('out.txt')).toBe(locked);
    expect((await project.cli('verify', 'p.json', '--stages', 'fixed')).exitCode).toBe(0);
  });

  it('reports a tampered blob instead of using it', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo genuine > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const digest = project.json('p.lock.json').stages.s.outputs['s.txt'];
    const env = open({ path: join(project.dir, '.podium/cache'), maxDbs: 8 });
    env.openDB({ name: 'blob-data', encoding: 'binary' }).putSync(digest, Buffer.from('forgery\n'));
    await env.close();
    const r = await project.cli('verify', 'p.json');
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`corrupt cache: blob ${digest.slice(0, 12)} no longer hashes to its key`);
    // The bad blob is gone, so the next run recomputes instead of restoring a forgery.
    expect((await project.run()).status).toEqual({ s: 'ran' });
    expect(project.read('s.txt')).toBe('genuine\n');
  });
});

describe('gc and show', () => {
  it('gc keeps an index entry only while every blob it names survives, and drops entries an older podium wrote', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo kept > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const live = project.json('p.lock.json').stages.s.outputs['s.txt'] as Digest;
    const store = new LmdbStore(join(project.dir, '.podium/cache'));
    const doomed = await store.putBlob(Buffer.from('in no record: gc removes it'));
    // finetune's shape: weights and optimizer state in one entry.
    store.setIndex('both-live', { blobs: [live, live], meta: { row: { epoch: 1 } } });
    store.setIndex('one-dies', { blobs: [live, doomed], meta: { row: { epoch: 1 } } });
    store.setIndex('none', { blobs: [], meta: {} });
    await store.flush();
    await store.close();
    const raw = open({ path: join(project.dir, '.podium/cache'), maxDbs: 16 });
    await raw.openDB({ name: 'index', encoding: 'string' }).put('old-string', `${live} 96 96 sharp`);
    await raw.close();

    const r = JSON.parse((await project.cli('gc', '--json')).stdout);
    expect(r.removedBlobs).toBe(1);
    const after = new LmdbStore(join(project.dir, '.podium/cache'));
    try {
      expect(after.blobInfo(doomed)).toBeUndefined();
      expect(
        after
          .indexEntries()
          .map(([k]) => k)
          .sort(),
      ).toEqual(['both-live', 'none']);
      expect(after.getIndex('both-live')).toEqual({ blobs: [live, live], meta: { row: { epoch: 1 } } });
    } finally {
      await after.close();
    }
  });

  it('gc keeps what lock files reference and frees the rest', async () => {
    project = new Project();
    project.write('data/raw.csv', 'x\n1\n');
    project.write('p.json', twoStage('0.01'));
    await project.run();
    project.write('p.json', twoStage('0.02'));
    await project.run();
    const keepRecent = JSON.parse((await project.cli('gc', '--json')).stdout);
    expect(keepRecent.removedRecords).toBe(0);
    // --dry-run lists what it would do and does nothing.
    const dry = await project.cli('gc', '--keep-runs', '0', '--dry-run');
    expect(dry.stdout).toMatch(
      /^gc --dry-run: would keep 2 records \(1 lock files, recent runs\) and remove 1 records and 1 blobs/,
    );
    expect(dry.stdout).toContain('  keep    prep');
    expect(dry.stdout).toMatch(/ {2}remove {2}record [0-9a-f]{12}/);
    expect(JSON.parse((await project.cli('gc', '--keep-runs', '0', '--dry-run', '--json')).stdout).removedRecords).toBe(
      1,
    );
    const r = JSON.parse((await project.cli('gc', '--keep-runs', '0', '--json')).stdout);
    expect(r.removedRecords).toBe(1);
    expect(r.removedBlobs).toBe(1); // the old model.txt; metrics.json and prep.csv are shared
    expect(r.bytesFreed).toBeGreaterThan(0);
    expect(r.fileBytes).toBeGreaterThan(0);
    // In words, freed space is not confused with the file's size on disk.
    const human = await project.cli('gc', '--keep-runs', '0');
    expect(human.stdout).toMatch(
      /0\.0 MB freed inside the cache file, which LMDB reuses for later writes; the file stays \d+\.\d MB on disk/,
    );
    // --compact gives the space back: a smaller file, the same results.
    const compacted = JSON.parse((await project.cli('gc', '--compact', '--json')).stdout);
    expect(compacted.compacted.after).toBeGreaterThan(0);
    expect(compacted.compacted.after).toBeLessThanOrEqual(compacted.compacted.before);
    expect((await project.cli('gc', '--compact')).stdout).toMatch(
      /compacted: the cache file went from \d+\.\d MB to \d+\.\d MB on disk/,
    );
    expect((await project.cli('verify', 'p.json')).exitCode).toBe(0);
    expect((await project.run()).status).toEqual({ prep: 'cached', train: 'cached' });
    project.write('p.json', twoStage('0.01'));
    expect((await project.run()).status).toEqual({ prep: 'cached', train: 'ran' });
  });

  it('gc refuses to sweep while a run is computing a stage', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({ slow: { run: 'touch started; sleep 5; echo x > x.txt', outs: ['x.txt'] } }),
    );
    const run = project.spawn(['run', 'p.json']);
    const { existsSync } = await import('node:fs');
    while (!existsSync(join(project.dir, 'started'))) await new Promise((r) => setTimeout(r, 50));
    const gc = await project.cli('gc');
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr).toMatch(
      /^podium: the cache is in use by podium run .*p\.json \(pid \d+, since .*\); nothing was removed/,
    );
    expect((await run).exitCode).toBe(0);
    expect((await project.cli('gc')).exitCode).toBe(0);
  });

  it('show prints the record, params, outputs and log tail', async () => {
    project = new Project();
    project.write('data/raw.csv', 'x\n1\n');
    project.write('p.json', twoStage('0.01'));
    await project.run();
    const r = await project.cli('show', 'p.json', 'train');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('train (command): fresh');
    expect(r.stdout).toMatch(/output {2}model\.txt {2}[0-9a-f]{12} {2}\d+ bytes/);
    expect((await project.cli('show', 'p.json', 'nope')).exitCode).toBe(2);
  });
});
