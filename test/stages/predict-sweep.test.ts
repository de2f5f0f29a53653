import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { chooseEpochs, select } from '../../stages/checkpoint-sweep.js';
import { decodePredictions, type Predictions } from '../../stages/data/predictions.js';
import { Project } from '../rig.js';

// One small pipeline for both kinds: synthetic data → decode → tiny finetune (a 2-point lr
// matrix, 2 epochs) → checkpoint-sweep → 10-crop prediction at two scales → fuse → export.
const pipeline = {
  name: 'tta',
  seed: 5,
  stages: {
    images: {
      uses: 'dataset',
      params: { format: 'synthetic', classes: 3, perClass: { train: 8, val: 4, test: 2 }, size: 40 },
    },
    decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 36 } },
    aug: {
      uses: 'augment',
      inputs: { images: 'decoded' },
      params: { level: 1, crop: 32, previewImages: 1, previewAugmentations: 1 },
    },
    train: {
      uses: 'finetune',
      inputs: { images: 'decoded', augment: 'aug' },
      params: { model: 'tiny', inputSize: 32, epochs: 2, batchSize: 8, lr: 0.05, momentum: 0.9, backend: 'wasm' },
      matrix: { lr: [0.05, 0.02] },
    },
    sweep: {
      uses: 'checkpoint-sweep',
      inputs: { models: 'train', images: 'decoded' },
      params: { select: 2, backend: 'wasm' },
    },
    tta: {
      uses: 'multicrop-predict',
      inputs: { models: ['sweep', 'train'], images: 'decoded' },
      params: { crops: '10', scales: [32, 40], batchSize: 16, backend: 'wasm' },
    },
    // Defaults for scales (inputSize and 8/7 of it), a list of crop sets, logit averaging.
    tta2: {
      uses: 'multicrop-predict',
      inputs: { models: 'train', images: 'decoded' },
      params: { crops: [1, 'full'], average: 'logits', splits: ['val', 'test', 'nope'], backend: 'wasm' },
    },
    fused: { uses: 'fuse', inputs: { predictions: ['tta', 'tta2'] }, params: { method: 'greedy' } },
    submit: { uses: 'export', inputs: { predictions: 'fused' }, params: { format: 'csv', path: 'out/submission.csv' } },
  },
};

let project: Project;
let lock: any;
beforeAll(async () => {
  project = new Project();
  project.write('p.json', pipeline);
  const r = await project.run();
  expect(r.exitCode, r.stderr).toBe(0);
  lock = project.json('p.lock.json').stages;
}, 90_000);
afterAll(() => project?.cleanup());

async function blobs<T>(read: (get: (d: string) => Buffer) => T): Promise<T> {
  const store = new LmdbStore(join(project.dir, '.podium/cache'));
  try {
    return read((d) => store.getBlob(d as never)!);
  } finally {
    await store.close();
  }
}

describe('checkpoint-sweep and multicrop-predict', () => {
  it('chooses epochs (all, last k, every k plus the last) and selects by metric with stable ties', () => {
    const all = ['epoch-001', 'epoch-002', 'epoch-003', 'epoch-004', 'epoch-005'];
    expect(chooseEpochs(all, 'all')).toEqual(all);
    expect(chooseEpochs(all, { last: 2 })).toEqual(['epoch-004', 'epoch-005']);
    expect(chooseEpochs(all, { every: 2 })).toEqual(['epoch-002', 'epoch-004', 'epoch-005']);
    const e = (epoch: string, top1: number, top3: number, loss: number): any => ({
      stageId: 'a',
      epoch,
      checkpoint: epoch,
      inputSize: 8,
      classes: [],
      metrics: { top1, top3, loss },
    });
    const entries = [e('1', 0.5, 0.9, 1), e('2', 0.7, 0.8, 0.9), e('3', 0.7, 0.95, 0.8), e('4', 0.6, 0.95, 0.5)];
    expect(select(entries, 'top1', 2).map((x) => x.epoch)).toEqual(['3', '2']);
    expect(select(entries, 'top3', 2).map((x) => x.epoch)).toEqual(['4', '3']);
    expect(select(entries, 'loss', 1).map((x) => x.epoch)).toEqual(['4']);
  });

  it('sweeps every epoch of every matrix point and selects the best', async () => {
    const trainIds = Object.keys(lock)
      .filter((id) => id.startsWith('train@'))
      .sort();
    expect(trainIds).toHaveLength(2);
    const { table, selection } = await blobs((get) => ({
      table: JSON.parse(get(lock.sweep.outputs.table).toString()),
      selection: JSON.parse(get(lock.sweep.outputs.selection).toString()),
    }));
    expect(table.rows.map((r: any) => `${r.stageId} ${r.epoch}`).sort()).toEqual(
      trainIds.flatMap((id) => [`${id} epoch-001`, `${id} epoch-002`]),
    );
    for (const r of table.rows) {
      expect(r.checkpoint).toBe(lock[r.stageId].outputs[r.epoch]);
      expect(r.top3).toBe(1); // 3 classes
      expect(r.loss).toBeGreaterThan(0);
    }
    expect(selection).toHaveLength(2);
    expect(selection[0].metrics.top1).toBeGreaterThanOrEqual(selection[1].metrics.top1);
    const bestTop1 = Math.max(...table.rows.map((r: any) => r.top1));
    expect(selection[0].metrics.top1).toBe(bestTop1);
    expect(lock.sweep.metrics.valTop1).toBe(bestTop1);
    expect(selection[0].inputSize).toBe(32);
  });

  it('predicts every selected and last checkpoint with 10 crops at two scales', async () => {
    const { selection, decoded } = await blobs((get) => ({
      selection: JSON.parse(get(lock.sweep.outputs.selection).toString()),
      decoded: JSON.parse(get(lock.decoded.outputs.images).toString()),
    }));
    const names = Object.keys(lock.tta.outputs).filter((n) => n.startsWith('predictions'));
    const expected = new Set([
      ...selection.map((s: any) => `predictions:${s.stageId}:${s.epoch}`),
      ...Object.keys(lock)
        .filter((id) => id.startsWith('train@'))
        .map((id) => `predictions:${id}:epoch-002`),
    ]);
    expect(new Set(names)).toEqual(expected);
    const { table, preds } = await blobs((get) => ({
      table: JSON.parse(get(lock.tta.outputs.table).toString()),
      preds: names.map((n) => decodePredictions(get(lock.tta.outputs[n]))) as Predictions[],
    }));
    for (const p of preds) {
      expect(Object.keys(p.splits)).toEqual(['val', 'test']);
      for (const split of ['val', 'test']) {
        const s = p.splits[split]!;
        expect(s.ids).toEqual(decoded.splits[split].map((r: any) => r.id));
        expect(s.labels).toEqual(decoded.splits[split].map((r: any) => r.label));
        for (let i = 0; i < s.ids.length; i++) {
          const row = Array.from(s.probs.subarray(i * 3, i * 3 + 3));
          expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        }
      }
    }
    // Every (crops, scale) per checkpoint, plus both scales together and the averaged configuration.
    for (const n of names) {
      const [, stageId, epoch] = n.split(':');
      const rows = table.rows.filter((r: any) => r.stageId === stageId && r.epoch === epoch);
      // Every labelled split gets its rows (the synthetic test split has labels).
      for (const split of ['val', 'test']) {
        const own = rows.filter((r: any) => r.split === split);
        expect(own.map((r: any) => `${r.crops}@${r.scale}`).sort()).toEqual(
          ['1@32', '1@40', '1@all', '10@32', '10@40', '10@all', '10@all', '5@32', '5@40', '5@all'].sort(),
        );
      }
      for (const r of rows) {
        expect(r.top1).toBeGreaterThanOrEqual(0);
        expect(r.top3).toBe(1);
      }
    }
    expect(lock.tta.metrics.valTop3).toBe(1);
    expect(names).toContain(lock.tta.metrics.best);
  });

  it('keeps every (crops, scale) row as a fusion candidate, and fuse selects among them', async () => {
    const names = Object.keys(lock.tta.outputs).filter((n) => n.startsWith('predictions'));
    const candidates = Object.keys(lock.tta.outputs)
      .filter((n) => n.startsWith('candidate'))
      .sort();
    expect(candidates).toEqual(
      names
        .flatMap((n) =>
          ['1@32', '1@40', '1@all', '5@32', '5@40', '5@all', '10@32', '10@40', '10@all'].map(
            (c) => `candidate:${n.slice('predictions:'.length)}:${c}`,
          ),
        )
        .sort(),
    );
    expect(
      Object.keys(lock.tta2.outputs)
        .filter((n) => n.startsWith('candidate'))
        .map((n) => n.split(':').pop())
        .sort(),
    ).toEqual(['1@32', '1@37', '1@all', 'full', '1+full@all'].flatMap((c) => [c, c]).sort());
    const { table, candidate, report } = await blobs((get) => ({
      table: JSON.parse(get(lock.tta.outputs.table).toString()),
      candidate: decodePredictions(get(lock.tta.outputs[candidates[0]!])),
      report: JSON.parse(get(lock.fused.outputs.report).toString()),
    }));
    // A candidate holds every split (the test split too, for export) and scores as its table row.
    expect(Object.keys(candidate.splits)).toEqual(['val', 'test']);
    const [, stageId, epoch, which] = candidates[0]!.split(':');
    const [crops, scale] = which!.split('@');
    const row = table.rows.find(
      (r: any) =>
        r.split === 'val' &&
        r.stageId === stageId &&
        r.epoch === epoch &&
        r.crops === crops &&
        String(r.scale) === scale,
    );
    const val = candidate.splits.val!;
    const top1 =
      val.labels.filter((y, i) => {
        const p = Array.from(val.probs.subarray(i * 3, i * 3 + 3));
        return p.every((q, c) => c === y || q < p[y!]!);
      }).length / val.labels.length;
    expect(row.top1).toBeCloseTo(top1, 9);
    // fuse's members are the candidates of both prediction stages, and it is no worse than the best on val.
    expect(report.members.map((m: any) => m.name).sort()).toEqual(
      [
        ...candidates.map((c) => `tta:${c}`),
        ...Object.keys(lock.tta2.outputs)
          .filter((n) => n.startsWith('candidate'))
          .map((c) => `tta2:${c}`),
      ].sort(),
    );
    expect(report.fused.val.top1).toBeGreaterThanOrEqual(Math.max(...report.members.map((m: any) => m.val.top1)));
  });

  it('takes default scales, several crop sets and logit averaging', async () => {
    const names = Object.keys(lock.tta2.outputs)
      .filter((n) => n.startsWith('predictions'))
      .sort();
    expect(names).toEqual(
      Object.keys(lock)
        .filter((id) => id.startsWith('train@'))
        .sort()
        .map((id) => `predictions:${id}:epoch-002`),
    );
    const { table, pred } = await blobs((get) => ({
      table: JSON.parse(get(lock.tta2.outputs.table).toString()),
      pred: decodePredictions(get(lock.tta2.outputs[names[0]!])),
    }));
    expect(table.average).toBe('logits');
    const [, stageId] = names[0]!.split(':');
    expect(
      table.rows
        .filter((r: any) => r.stageId === stageId && r.split === 'val')
        .map((r: any) => `${r.crops}@${r.scale}`),
    ).toEqual(['1@32', '1@37', '1@all', 'full@null', '1+full@all']);
    expect(Object.keys(pred.splits)).toEqual(['val', 'test']);
    const row = Array.from(pred.splits.test!.probs.subarray(0, 3));
    expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('is reproducible: podium verify re-executes and finds identical bytes', async () => {
    const v = await project.cli('verify', 'p.json');
    expect(v.stdout).toContain('identical  sweep');
    expect(v.stdout).toContain('identical  tta');
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);
  }, 60_000);
});

describe('changing only the fuse method', () => {
  it('reruns fuse and export and nothing else', async () => {
    const before = project.json('p.lock.json').stages;
    project.write('p.json', {
      ...pipeline,
      stages: { ...pipeline.stages, fused: { ...pipeline.stages.fused, params: { method: 'mean' } } },
    });
    // As a user sees it: only the ran stages are listed, fuse with its val scores.
    const r = await project.cli('run', 'p.json');
    expect(r.exitCode, r.stderr).toBe(0);
    const ran = r.stderr.split('\n').filter((l) => l.startsWith('✓ ran'));
    expect(ran.map((l) => l.split(/\s+/)[2])).toEqual(['fused', 'submit']);
    expect(ran[0]).toMatch(/fused \([\d.]+s\) — top1 [\d.]+, .*holdoutTop1 [\d.]+/);
    expect(r.stderr).not.toMatch(/failed|skipped/);
    const after = project.json('p.lock.json').stages;
    expect(after.fused.key).not.toBe(before.fused.key);
    expect(after.tta.key).toBe(before.tta.key);
  }, 90_000);
});
