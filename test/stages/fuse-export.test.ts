import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { stageStoreOf } from '../../cache/local-stage-store.js';
import type { StageRecord } from '../../cache/store.js';
import { InputError, type InputArtifact, type StageContext } from '../../stages/contract.js';
import { decodePredictions, encodePredictions, type Predictions } from '../../stages/data/predictions.js';
import { exportStage, formatSubmission, type ExportParams } from '../../stages/export.js';
import { validator } from '../../runner/validators.js';
import { combine, fuseMembers, isHeldOut, type Member } from '../../stages/data/fusion.js';
import { fuse, type FuseParams } from '../../stages/fuse.js';
import { Project } from '../rig.js';

/** Params as the runner hands them to run(): validated by the kind's schema, ajv filling in its defaults. */
function fuseParams(p: object): FuseParams {
  const filled = structuredClone(p);
  const validate = validator('kind:fuse');
  if (!validate(filled)) throw new Error(JSON.stringify(validate.errors));
  return filled as FuseParams;
}

/**
 * An RFC 4180 reader (quoted fields may hold commas, doubled quotes and line breaks), written
 * here independently of export.ts so that the test checks the format, not the writer against
 * itself. Rows end with LF or CRLF; a trailing line break ends the last row.
 */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (field !== '') throw new Error(`quote inside an unquoted field at ${i}`);
      quoted = true;
      i++;
      continue;
    }
    if (c === ',') {
      row.push(field);
      field = '';
      i++;
      continue;
    }
    if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += c === '\r' ? 2 : 1;
      continue;
    }
    field += c;
    i++;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const K = 3;
const CLASSES = ['a', 'b', 'c'];

/** One split of n rows; row(i) gives that row's probabilities. */
function member(
  name: string,
  n: number,
  row: (i: number, y: number) => number[],
  extra: Record<string, (i: number) => number[]> = {},
): Member {
  const labels = Array.from({ length: n }, (_, i) => i % K);
  const splits: Predictions['splits'] = {
    val: {
      ids: labels.map((_, i) => `v${i}.jpg`),
      labels,
      probs: new Float32Array(labels.flatMap((y, i) => row(i, y))),
    },
  };
  for (const [s, f] of Object.entries(extra))
    splits[s] = {
      ids: labels.map((_, i) => `${s}${i}.jpg`),
      labels: labels.map(() => null),
      probs: new Float32Array(labels.flatMap((_, i) => f(i))),
    };
  return { name, predictions: { classes: CLASSES, splits } };
}

/** Probabilities with `p` on class c, `q` on the next class, the rest on the third. */
const put = (c: number, p: number, q: number): number[] => {
  const r = [0, 0, 0];
  r[c] = p;
  r[(c + 1) % K] = q;
  r[(c + 2) % K] = 1 - p - q;
  return r;
};

const N = 60;
// A is right on the first half and narrowly wrong on the second; B the reverse.
const A = member('A', N, (i, y) => (i < N / 2 ? put(y, 0.8, 0.1) : put(y, 0.35, 0.45)));
const B = member('B', N, (i, y) => (i >= N / 2 ? put(y, 0.8, 0.1) : put(y, 0.35, 0.45)));
// C: a noisy copy of A, a little worse on its good half and confidently wrong on the other.
const C = member('C', N, (i, y) =>
  i < N / 2 ? (i % 10 === 3 ? put(y, 0.3, 0.6) : put(y, 0.7 + (i % 3) * 0.05, 0.1)) : put(y, 0.05, 0.9),
);

describe('fuse methods', () => {
  it('takes its defaults from the schema alone (ajv fills them, nested ones too), as the hand-kept copy had them', () => {
    expect(fuseParams({})).toEqual({
      method: 'greedy',
      members: 'candidates',
      metric: 'top1',
      fitSplit: 'val',
      holdout: 0.5,
      greedy: { init: 1, maxRounds: 20, bagging: null },
      weighted: { maxRounds: 30 },
    });
    expect(fuseParams({ greedy: { init: 2 } })).toMatchObject({ greedy: { init: 2, maxRounds: 20, bagging: null } });
  });

  it('greedy takes the complementary pair, not the noisy copy', () => {
    const { report, predictions } = fuseMembers([A, C, B], fuseParams({ method: 'greedy' }), 7);
    expect(report.chosen).toEqual(['A', 'B']);
    expect(report.weights).toEqual({ A: 0.5, B: 0.5 });
    expect(report.selection).toEqual([['A', 'B']]);
    expect(report.fused.val.top1).toBe(1);
    expect(report.fused.fit.top1).toBe(1);
    expect(report.fused.holdout.top1).toBe(1);
    expect(report.members.map((m) => [m.name, m.val.top1])).toEqual([
      ['A', 0.5],
      ['C', expect.any(Number)],
      ['B', 0.5],
    ]);
    expect(predictions.splits.val!.probs[0]).toBeCloseTo((0.8 + 0.35) / 2, 6);
    // The plain mean of all three is dragged down by the confident copy.
    expect(fuseMembers([A, C, B], fuseParams({ method: 'mean' }), 7).report.fused.val.top1!).toBeLessThan(0.75);
  });

  it('a fitted fusion that loses to a member on the whole fit split keeps that member alone', () => {
    // A is right on every held-out image and on half the fitting ones, B (more confident) on
    // 60% of the fitting ones and no held-out one: fitting sees only the fitting part, picks B,
    // and on the whole of val that loses to A.
    const seed = 4;
    const fitting: number[] = [];
    const A2 = member('A', N, (i, y) => {
      const held = isHeldOut(seed, `v${i}.jpg`, 0.5);
      if (!held) fitting.push(i);
      return held || fitting.length % 2 === 0 ? put(y, 0.5, 0.3) : put(y, 0.3, 0.5);
    });
    let f = 0;
    const B2 = member('B', N, (i, y) =>
      isHeldOut(seed, `v${i}.jpg`, 0.5) ? put(y, 0.05, 0.9) : f++ % 5 < 3 ? put(y, 0.9, 0.05) : put(y, 0.05, 0.9),
    );
    for (const method of ['greedy', 'weighted'] as const) {
      const { report, predictions } = fuseMembers([A2, B2], fuseParams({ method }), seed);
      const [a, b] = report.members;
      expect(a!.val.top1!).toBeGreaterThan(b!.val.top1!);
      expect(b!.fit.top1!).toBeGreaterThan(a!.fit.top1!);
      expect(report.fallback).toEqual({ member: 'A', memberScore: a!.val.top1, fusedScore: expect.any(Number) });
      expect(report.fallback!.fusedScore).toBeLessThan(a!.val.top1!);
      expect(report.weights).toEqual({ A: 1 });
      expect(report.fused.val.top1).toBe(a!.val.top1);
      expect(predictions.splits.val!.probs).toEqual(A2.predictions.splits.val!.probs);
    }
    // The unfitted methods are what they say: no fallback.
    expect(fuseMembers([A2, B2], fuseParams({ method: 'mean' }), seed).report.fallback).toBeUndefined();
  });

  it('never ends below its best member on the fit split, whatever the members', () => {
    let state = 12345;
    const rand = (): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    for (let trial = 0; trial < 20; trial++) {
      const members = Array.from({ length: 4 }, (_, m) =>
        member(`m${m}`, 30, (_i, y) => {
          const p = rand();
          return rand() < 0.5 ? put(y, p, (1 - p) * rand()) : put((y + 1) % K, p, (1 - p) * rand());
        }),
      );
      for (const method of ['greedy', 'weighted'] as const) {
        const r = fuseMembers(members, fuseParams({ method, holdout: 0.5 }), trial).report;
        expect(r.fused.val.top1!).toBeGreaterThanOrEqual(Math.max(...r.members.map((x) => x.val.top1!)));
      }
    }
  });

  it('greedy with init 2 starts from the two best and bagging stays deterministic', () => {
    const two = fuseMembers(
      [A, C, B],
      fuseParams({ method: 'greedy', greedy: { init: 2, maxRounds: 20, bagging: null } }),
      7,
    ).report;
    expect(Object.keys(two.counts!).sort()).toEqual(['A', 'B']);
    const p: Partial<FuseParams> = {
      method: 'greedy',
      greedy: { init: 1, maxRounds: 20, bagging: { bags: 5, fraction: 0.7 } },
    };
    const r1 = fuseMembers([A, C, B], fuseParams(p), 3);
    const r2 = fuseMembers([A, C, B], fuseParams(p), 3);
    expect(JSON.stringify(r1.report)).toBe(JSON.stringify(r2.report));
    expect(encodePredictions(r1.predictions).equals(encodePredictions(r2.predictions))).toBe(true);
    expect(r1.report.selection).toHaveLength(5);
    expect(Object.values(r1.report.weights).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });

  it('mean, geometric and logit-mean give their textbook values', () => {
    const m1 = [0.5, 0.3, 0.2];
    const m2 = [0.1, 0.6, 0.3];
    const mats = [new Float32Array(m1), new Float32Array(m2)];
    expect([...combine('mean', mats, [0.5, 0.5], K)].map((x) => +x.toFixed(5))).toEqual([0.3, 0.45, 0.25]);
    const geo = m1.map((x, i) => Math.sqrt(x * m2[i]!));
    const gs = geo.reduce((a, b) => a + b);
    [...combine('geometric', mats, [0.5, 0.5], K)].forEach((x, i) => expect(x).toBeCloseTo(geo[i]! / gs, 6));
    const logit = (p: number): number => Math.log(p / (1 - p));
    const sig = m1.map((x, i) => 1 / (1 + Math.exp(-(logit(x) + logit(m2[i]!)) / 2)));
    const ss = sig.reduce((a, b) => a + b);
    [...combine('logit-mean', mats, [0.5, 0.5], K)].forEach((x, i) => expect(x).toBeCloseTo(sig[i]! / ss, 6));
    // Through fuseMembers: equal weights, every member chosen.
    const r = fuseMembers([A, B], fuseParams({ method: 'geometric' }), 1).report;
    expect(r.weights).toEqual({ A: 0.5, B: 0.5 });
  });

  it('weighted moves the weight to the good member', () => {
    // Good: right on 80% with 0.6; Bad: confidently wrong everywhere.
    const good = member('good', N, (i, y) => (i % 5 === 0 ? put(y, 0.2, 0.6) : put(y, 0.6, 0.2)));
    const bad = member('bad', N, (_i, y) => put(y, 0.02, 0.9));
    const mean = fuseMembers([good, bad], fuseParams({ method: 'mean' }), 1).report;
    const w = fuseMembers([good, bad], fuseParams({ method: 'weighted', holdout: 0.3 }), 1).report;
    expect(mean.fused.val.top1!).toBeLessThan(0.2);
    expect(w.weights.good!).toBeGreaterThan(0.8);
    expect(w.weights.good! + (w.weights.bad ?? 0)).toBeCloseTo(1, 9);
    expect(w.fused.val.top1).toBeCloseTo(0.8, 9);
    expect(w.fused.val.logloss!).toBeLessThan(mean.fused.val.logloss!);
  });

  it('reports fit, held-out and whole-val scores from a seeded hash split', () => {
    const r = fuseMembers([A, C, B], fuseParams({ method: 'greedy', holdout: 0.5 }), 11).report;
    expect(r.fused.fit.n + r.fused.holdout.n).toBe(N);
    expect(r.fused.val.n).toBe(N);
    expect(r.fused.holdout.n).toBeGreaterThan(N * 0.25);
    expect(r.fused.holdout.n).toBeLessThan(N * 0.75);
    const held = A.predictions.splits.val!.ids.filter((id) => isHeldOut(11, id, 0.5)).length;
    expect(r.fused.holdout.n).toBe(held);
    // Another seed holds out other images; holdout 0 holds out none.
    expect(A.predictions.splits.val!.ids.filter((id) => isHeldOut(12, id, 0.5))).not.toEqual(
      A.predictions.splits.val!.ids.filter((id) => isHeldOut(11, id, 0.5)),
    );
    const none = fuseMembers([A, B], fuseParams({ method: 'greedy', holdout: 0 }), 11).report;
    expect(none.fused.holdout).toEqual({ n: 0, top1: null, top3: null, logloss: null });
    expect(none.fused.fit.n).toBe(N);
  });

  it('refuses members that disagree, and fitting without labels', () => {
    const other = { name: 'X', predictions: { ...A.predictions, classes: ['a', 'b', 'z'] } };
    expect(() => fuseMembers([A, other], fuseParams({}), 1)).toThrow(InputError);
    expect(() => fuseMembers([A, other], fuseParams({}), 1)).toThrow(/disagree on classes/);
    const ids = {
      name: 'Y',
      predictions: {
        classes: CLASSES,
        splits: {
          val: {
            ...A.predictions.splits.val!,
            ids: A.predictions.splits.val!.ids.map((id, i) => (i === 5 ? 'zz.jpg' : id)),
          },
        },
      },
    };
    expect(() => fuseMembers([A, ids], fuseParams({}), 1)).toThrow(/split "val" at row 5/);
    expect(() => fuseMembers([A, B], fuseParams({ fitSplit: 'test' }), 1)).toThrow(
      /fit split "test" is not in the predictions/,
    );
    expect(fuseMembers([A, B], fuseParams({ method: 'mean', fitSplit: 'test' }), 1).report.fused.val.top1).toBeNull();
  });
});

// ---- run() with a real LMDB store ----------------------------------------------------------

let dir: string;
let store: LmdbStore | undefined;
let project: Project | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  project?.cleanup();
  project = undefined;
});

function setup(): { store: LmdbStore; projectDir: string } {
  dir = mkdtempSync(join(tmpdir(), 'podium-fuse-'));
  store = new LmdbStore(join(dir, '.podium/cache'));
  return { store, projectDir: dir };
}

function context(s: LmdbStore, projectDir: string, inputs: StageContext['inputs'], log: string[] = []): StageContext {
  return {
    stageId: 'under-test',
    key: 'k'.repeat(64) as Digest,
    resume: true,
    projectDir,
    seed: 5,
    slot: 0,
    gpu: undefined,
    threads: 1,
    inputs,
    store: stageStoreOf(s),
    signal: new AbortController().signal,
    log: (l) => log.push(l),
  };
}

async function artifact(
  s: LmdbStore,
  stageId: string,
  outputs: Record<string, Member | string>,
): Promise<InputArtifact> {
  const out: Record<string, Digest> = {};
  for (const [name, m] of Object.entries(outputs))
    out[name] = await s.putBlob(typeof m === 'string' ? Buffer.from(m) : encodePredictions(m.predictions));
  return { stageId, outputs: out, metrics: {} };
}

const withTest = (m: Member): Member => {
  const val = m.predictions.splits.val!;
  return {
    name: m.name,
    predictions: {
      classes: CLASSES,
      splits: { val, test: { ids: ['t1.jpg', 't2.jpg'], labels: [null, null], probs: val.probs.slice(0, 2 * K) } },
    },
  };
};

function record(outputs: Record<string, Digest>): StageRecord {
  return {
    key: 'k'.repeat(64) as Digest,
    kind: 'export',
    version: 1,
    stageId: 's',
    outputs,
    refs: [],
    metrics: {},
    startedAt: new Date(0).toISOString(),
    durationMs: 1,
    backend: null,
    logTail: [],
  };
}

describe('fuse stage run()', () => {
  it('fuses every predictions* output of every input stage, deterministically', async () => {
    const { store: s, projectDir } = setup();
    const inputs = {
      predictions: [
        await artifact(s, 'tta@lr=0.01', { predictions: withTest(A), 'predictions-noisy': withTest(C), report: '{}' }),
        await artifact(s, 'tta@lr=0.1', { predictions: withTest(B) }),
      ],
    };
    const params = fuseParams({});
    const r1 = await fuse.run(context(s, projectDir, inputs), params);
    const r2 = await fuse.run(context(s, projectDir, inputs), params);
    expect(r1.outputs).toEqual(r2.outputs);
    const report = JSON.parse(s.getBlob(r1.outputs.report!)!.toString());
    expect(report.members.map((m: { name: string }) => m.name)).toEqual([
      'tta@lr=0.01:predictions',
      'tta@lr=0.01:predictions-noisy',
      'tta@lr=0.1:predictions',
    ]);
    expect(report.chosen).toEqual(['tta@lr=0.01:predictions', 'tta@lr=0.1:predictions']);
    const fused = decodePredictions(s.getBlob(r1.outputs.predictions!)!);
    expect(Object.keys(fused.splits)).toEqual(['val', 'test']);
    expect(fused.splits.test!.ids).toEqual(['t1.jpg', 't2.jpg']);
    expect(r1.metrics).toMatchObject({ top1: 1, top3: 1, fitTop1: 1, holdoutTop1: 1 });
  });

  it('refuses an input stage without predictions', async () => {
    const { store: s, projectDir } = setup();
    const inputs = { predictions: [await artifact(s, 'train', { model: 'weights' })] };
    await expect(fuse.run(context(s, projectDir, inputs), fuseParams({}))).rejects.toThrow(
      /"train" has no predictions output/,
    );
  });
});

describe('export', () => {
  const preds = (): Predictions => ({
    classes: ['beach', 'forest', 'city', 'desert'],
    splits: {
      test: {
        ids: ['x1.jpg', 'x2.jpg', 'x,3.jpg'],
        labels: [null, null, null],
        probs: new Float32Array([0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.15, 0.05, 0.25, 0.25, 0.4, 0.1]),
      },
      val: {
        ids: ['v1.jpg', 'v2.jpg'],
        labels: [0, 1],
        probs: new Float32Array([0.6, 0.2, 0.1, 0.1, 0.5, 0.3, 0.1, 0.1]),
      },
    },
  });
  const base: ExportParams = {
    format: 'ai-challenger',
    split: 'test',
    topK: 3,
    path: 'out/submission.json',
    classIds: 'index',
  };

  it('ai-challenger: top-K label ids best first, every image once', () => {
    const sub = JSON.parse(formatSubmission(preds(), base));
    expect(sub).toEqual([
      { image_id: 'x1.jpg', label_id: [3, 2, 1] },
      { image_id: 'x2.jpg', label_id: [0, 2, 1] },
      { image_id: 'x,3.jpg', label_id: [2, 0, 1] },
    ]);
    expect(JSON.parse(formatSubmission(preds(), { ...base, classIds: 'name', topK: 1 }))[0]).toEqual({
      image_id: 'x1.jpg',
      label_id: ['desert'],
    });
  });

  it('csv: path,label1..labelK, one column per rank, RFC 4180 quoting', () => {
    expect(formatSubmission(preds(), { ...base, format: 'csv', topK: 1 })).toBe(
      'path,label1\nx1.jpg,3\nx2.jpg,0\n"x,3.jpg",2\n',
    );
    expect(formatSubmission(preds(), { ...base, format: 'csv', classIds: 'name' })).toBe(
      'path,label1,label2,label3\nx1.jpg,desert,city,forest\nx2.jpg,beach,city,forest\n"x,3.jpg",city,beach,forest\n',
    );
  });

  it('csv: class names with spaces, commas, quotes, newlines and non-ASCII split back exactly', () => {
    // Class folder names as imagefolder takes them; ids are <class>/<file>.
    const classes = ['cat living room ☃ é', 'dog', 'say "hi", wave', 'two\nlines'];
    const p: Predictions = {
      classes,
      splits: {
        test: {
          ids: ['cat living room ☃ é/1.jpg', 'say "hi", wave/2.jpg', 'dog/3.jpg'],
          labels: [null, null, null],
          probs: new Float32Array([0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4, 0.25, 0.35, 0.15, 0.25]),
        },
      },
    };
    const text = formatSubmission(p, { ...base, format: 'csv', classIds: 'name' });
    expect(parseCsv(text)).toEqual([
      ['path', 'label1', 'label2', 'label3'],
      ['cat living room ☃ é/1.jpg', 'cat living room ☃ é', 'dog', 'say "hi", wave'],
      ['say "hi", wave/2.jpg', 'two\nlines', 'say "hi", wave', 'dog'],
      ['dog/3.jpg', 'dog', 'cat living room ☃ é', 'two\nlines'],
    ]);
  });

  it('refuses a missing split, too large a topK and duplicate ids', () => {
    expect(() => formatSubmission(preds(), { ...base, split: 'nope' })).toThrow(
      /split "nope" is not in the predictions/,
    );
    expect(() => formatSubmission(preds(), { ...base, topK: 5 })).toThrow(InputError);
    const dup = preds();
    dup.splits.test!.ids[2] = 'x1.jpg';
    expect(() => formatSubmission(dup, base)).toThrow(/appears twice/);
  });

  it('run() writes the file atomically inside the project, stores it, and restores it', async () => {
    const { store: s, projectDir } = setup();
    const inputs = { predictions: await artifact(s, 'fused', { predictions: { name: 'f', predictions: preds() } }) };
    const r = await exportStage.run(context(s, projectDir, inputs), base);
    const file = join(projectDir, 'out/submission.json');
    const bytes = readFileSync(file);
    expect(s.getBlob(r.outputs.submission!)!.equals(bytes)).toBe(true);
    expect(JSON.parse(bytes.toString())).toHaveLength(3);
    expect(r.outputs.metrics).toBeUndefined();
    expect(exportStage.files!(base, record(r.outputs))).toEqual(['out/submission.json']);

    const rec = record(r.outputs);
    const rctx = { projectDir, store: stageStoreOf(s) };
    expect(exportStage.restore!(rctx, base, rec)).toEqual([]);
    rmSync(file);
    expect(exportStage.restore!(rctx, base, rec)).toEqual(['out/submission.json']);
    expect(readFileSync(file).equals(bytes)).toBe(true);
    writeFileSync(file, 'edited');
    expect(exportStage.restore!(rctx, base, rec)).toEqual(['out/submission.json']);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('run() on a labelled split also outputs metrics', async () => {
    const { store: s, projectDir } = setup();
    const inputs = { predictions: await artifact(s, 'fused', { predictions: { name: 'f', predictions: preds() } }) };
    const r = await exportStage.run(context(s, projectDir, inputs), {
      ...base,
      split: 'val',
      format: 'csv',
      path: 'val.csv',
      topK: 2,
    });
    expect(r.metrics).toEqual({ images: 2, top1: 0.5, top2: 1 });
    const m = JSON.parse(s.getBlob(r.outputs.metrics!)!.toString());
    expect(m).toMatchObject({
      split: 'val',
      source: 'fused:predictions',
      top1: 0.5,
      topK: 1,
      confusion: [
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
    });
    expect(m.misclassified.map((x: { id: string }) => x.id)).toEqual(['v2.jpg']);
  });

  it('refuses paths outside the project: ../ escapes, absolute paths elsewhere, symlinks out', async () => {
    const { store: s, projectDir } = setup();
    const inputs = { predictions: await artifact(s, 'fused', { predictions: { name: 'f', predictions: preds() } }) };
    const ctx = context(s, projectDir, inputs);
    const outside = mkdtempSync(join(tmpdir(), 'podium-outside-'));
    try {
      for (const path of ['../escape.json', 'out/../../escape.json', join(outside, 'sub.json'), '.']) {
        await expect(exportStage.run(ctx, { ...base, path })).rejects.toThrow(InputError);
      }
      await expect(exportStage.run(ctx, { ...base, path: '../escape.json' })).rejects.toThrow(
        /outside the project directory/,
      );
      symlinkSync(outside, join(projectDir, 'link'));
      await expect(exportStage.run(ctx, { ...base, path: 'link/sub.json' })).rejects.toThrow(/symlink/);
      expect(existsSync(join(outside, 'sub.json'))).toBe(false);
      // An absolute path inside the project is fine.
      mkdirSync(join(projectDir, 'abs'));
      await exportStage.run(ctx, { ...base, path: join(projectDir, 'abs', 'sub.json') });
      expect(existsSync(join(projectDir, 'abs', 'sub.json'))).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('fuse and export through the CLI', () => {
  it('validates params with defaults and fails with exit 2 when an input has no predictions', async () => {
    project = new Project();
    project.write('p.json', {
      name: 't',
      seed: 1,
      stages: {
        make: { uses: 'command', params: { run: 'echo hi > a.txt', outs: ['a.txt'] } },
        fused: { uses: 'fuse', inputs: { predictions: ['make'] }, params: { method: 'greedy', greedy: { init: 2 } } },
        submit: { uses: 'export', inputs: { predictions: 'fused' }, params: { path: 'out/submission.json' } },
      },
    });
    const r = await project.run();
    expect(r.exitCode).toBe(2);
    expect(r.status.fused).toBe('failed');
    expect(r.out.stages.find((x: { id: string }) => x.id === 'fused').reason).toMatch(
      /"make" has no predictions output/,
    );
    project.write('bad.json', {
      name: 't',
      stages: { submit: { uses: 'export', params: { format: 'xml', path: 'a' } } },
    });
    const bad = await project.cli('run', 'bad.json', '--json');
    expect(bad.exitCode).not.toBe(0);
  });
});
