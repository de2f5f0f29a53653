// `podium metrics` and `podium cat` through the real CLI, on a pipeline of command stages (fast:
// no TensorFlow), whose metrics and outputs are known exactly because the commands write them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import type { Digest } from '../../cache/canonical.js';
import { CLI, commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

// Three matrix points with known metrics: LR 0.1 has the best acc, LR 0.01 the lowest loss.
const METRICS: Record<string, { acc: number; loss: number; epochs: number }> = {
  '0.1': { acc: 0.9, loss: 0.5, epochs: 3 },
  '0.05': { acc: 0.7, loss: 0.4, epochs: 3 },
  '0.01': { acc: 0.6, loss: 0.2, epochs: 3 },
};

function pipeline(): object {
  const script = Object.entries(METRICS)
    .map(
      ([lr, m]) =>
        `if [ "$LR" = "${lr}" ]; then echo '{"acc": ${m.acc}, "valLoss": ${m.loss}, "epochs": ${m.epochs}}' > metrics.json; fi`,
    )
    .join('; ');
  return commandPipeline({
    prep: { run: 'printf "a,b\\n1,2\\n" > table.csv', outs: ['table.csv'] },
    train: {
      run: `${script}; printf "weights $LR" > model.bin`,
      inputs: { data: 'prep' },
      outs: ['model.bin', 'metrics.json'],
      metrics: 'metrics.json',
      matrix: { env: Object.keys(METRICS).map((LR) => ({ LR })) },
    },
  });
}

async function setUp(): Promise<Record<string, string>> {
  project = new Project();
  project.write('p.json', pipeline());
  // One job: the points write the same file names, so they must not run at once.
  const run = await project.run('p.json', '--jobs', '1');
  expect(run.exitCode).toBe(0);
  // Matrix ids, by LR value.
  return Object.fromEntries(
    Object.keys(run.status)
      .filter((id) => id.startsWith('train@'))
      .map((id) => [/"LR":"([^"]+)"/.exec(id)![1]!, id]),
  );
}

describe('podium metrics', () => {
  it('prints one table per stage, matrix points as rows, the best value per scored column marked', async () => {
    const ids = await setUp();
    const r = await project.cli('metrics', 'p.json');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    const header = lines[lines.indexOf('train (command)') + 1]!;
    // Metric columns in the lock file's (sorted) order.
    expect(header).toMatch(/params\.env\s+acc ↑\s+epochs\s+valLoss ↓$/);
    const row = (lr: string): string => lines.find((l) => l.trimStart().startsWith(ids[lr]!))!;
    expect(row('0.1')).toMatch(/0\.9\*\s+3 \s+0\.5$/);
    expect(row('0.05')).toMatch(/0\.7 \s+3 \s+0\.4$/);
    expect(row('0.01')).toMatch(/0\.6 \s+3 \s+0\.2\*$/);
    // Counts have no best, so equal epochs are not marked.
    expect(r.stdout).not.toMatch(/3\*/);
  });

  it('--json gives the same tables as data, --csv one row per point', async () => {
    const ids = await setUp();
    const j = JSON.parse((await project.cli('metrics', 'p.json', '--json')).stdout);
    const train = j.tables.find((t: { stage: string }) => t.stage === 'train');
    expect(train.params).toEqual(['env']);
    expect(train.directions).toEqual({ acc: 'max', valLoss: 'min' });
    const byId = Object.fromEntries(train.rows.map((x: { id: string }) => [x.id, x]));
    expect(byId[ids['0.1']!]).toMatchObject({
      metrics: { acc: 0.9, valLoss: 0.5, epochs: 3 },
      best: ['acc'],
      params: { env: { LR: '0.1' } },
    });
    expect(byId[ids['0.01']!].best).toEqual(['valLoss']);
    expect(byId[ids['0.05']!].best).toEqual([]);

    const csv = (await project.cli('metrics', 'p.json', '--csv')).stdout.trim().split('\n');
    expect(csv[0]).toBe('stage,id,param:env,acc,epochs,valLoss,marked_best');
    expect(csv).toContain(`train,"${ids['0.1']!.replace(/"/g, '""')}","{""LR"":""0.1""}",0.9,3,0.5,acc`);
    expect(csv).toContain('prep,prep,,,,,');
    expect(csv).toHaveLength(5);
  });

  it('says to run first when there is no lock file', async () => {
    project = new Project();
    project.write('p.json', pipeline());
    const r = await project.cli('metrics', 'p.json');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/no lock file yet; run the pipeline first/);
  });
});

describe('podium cat', () => {
  it("writes an output's bytes, equal to the blob the lock file names, to stdout or --out", async () => {
    const ids = await setUp();
    const id = ids['0.05']!;
    const lock = project.json('p.lock.json');
    const digest = lock.stages[id].outputs['model.bin'] as Digest;
    const store = new LmdbStore(join(project.dir, '.podium', 'cache'));
    const blob = Buffer.from(store.getBlob(digest, { verify: true })!);
    const metricsBlob = Buffer.from(
      store.getBlob(lock.stages[id].outputs['metrics.json'] as Digest, { verify: true })!,
    );
    await store.close();
    expect(blob.toString()).toBe('weights 0.05');

    // Raw stdout, as bytes: the rig's helpers decode text and strip the final newline.
    const out = await execa('node', [CLI, 'cat', 'p.json', id, 'model.bin'], {
      cwd: project.dir,
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    expect(Buffer.from(out.stdout)).toEqual(blob);

    const r = await project.cli('cat', 'p.json', id, 'metrics.json', '--out', 'm.json');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/metrics\.json: \d+ bytes/);
    expect(readFileSync(join(project.dir, 'm.json'))).toEqual(metricsBlob);
    expect(JSON.parse(metricsBlob.toString())).toEqual({ acc: 0.7, valLoss: 0.4, epochs: 3 });

    // The only output needs no name; several need one, and a matrix needs a point.
    const prep = await execa('node', [CLI, 'cat', 'p.json', 'prep'], { cwd: project.dir, stripFinalNewline: false });
    expect(prep.stdout).toBe('a,b\n1,2\n');
    const many = await project.cli('cat', 'p.json', id);
    expect(many.exitCode).toBe(2);
    expect(many.stderr).toMatch(/has 2 outputs; name one: model\.bin, metrics\.json/);
    expect((await project.cli('cat', 'p.json', 'train', 'model.bin')).stderr).toMatch(/is a matrix; name one point/);
    expect((await project.cli('cat', 'p.json', id, 'nope')).stderr).toMatch(
      /has no output "nope" \(outputs: model\.bin, metrics\.json\)/,
    );
  });

  it('show names each output and how to take it out', async () => {
    await setUp();
    const r = await project.cli('show', 'p.json', 'prep');
    expect(r.stdout).toMatch(/output {2}table\.csv {2}[0-9a-f]{12} {2}8 bytes/);
    expect(r.stdout).toContain('podium cat p.json prep <output>');
  });
});
