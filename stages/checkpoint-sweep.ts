// `checkpoint-sweep`: evaluate the chosen epochs' checkpoints of one or more finetune stages (a
// matrix counts as many) on a split with a given crop setting, tabulate config × epoch → top-1,
// top-3, loss, and select the n best by a metric. multicrop-predict reads the `selection` output;
// the selected checkpoints are refs of this stage, so gc keeps them as long as it is referenced.
import type { FromSchema } from 'json-schema-to-ts';
import { defineStage, InputError, type JsonSchema } from './contract.js';
import {
  checkClasses,
  epochsOf,
  finetuneCheckpoints,
  scoreCheckpoint,
  type SelectionEntry,
} from './data/checkpoint-refs.js';
import { averageCrops, cropCount, type CropSet } from './data/crops.js';
import type { BackendResolved } from './tf/backend-param.js';
import * as predict from './tf/predict.js';

type Metric = 'top1' | 'top3' | 'loss';

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    epochs: {
      oneOf: [
        { const: 'all' },
        {
          type: 'object',
          required: ['last'],
          additionalProperties: false,
          properties: { last: { type: 'integer', minimum: 1 } },
        },
        {
          type: 'object',
          required: ['every'],
          additionalProperties: false,
          properties: { every: { type: 'integer', minimum: 1 } },
        },
      ],
      default: 'all',
      description: "'all', { last: k } (the last k epochs) or { every: k } (epochs k, 2k, …, and always the last).",
    },
    crops: {
      enum: ['1', '5', '10', 'full', 1, 5, 10],
      default: '1',
      description: 'Crops each checkpoint is evaluated with (averaged as probabilities).',
    },
    scale: {
      type: ['integer', 'null'],
      minimum: 8,
      default: null,
      description: 'Shorter-side size to test at (default: the model inputSize).',
    },
    metric: {
      enum: ['top1', 'top3', 'loss'],
      default: 'top1',
      description: 'Selection metric (higher top-k is better, lower loss is better; ties: lower loss, then earlier).',
    },
    select: { type: 'integer', minimum: 1, default: 3, description: 'How many checkpoints to select.' },
    split: { type: 'string', default: 'val' },
    ...predict.predictionParams,
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv, the backend resolved. */
export type SweepParams = BackendResolved<FromSchema<typeof params>>;

export const checkpointSweep = defineStage<SweepParams>({
  name: 'checkpoint-sweep',
  version: 3, // 2: batch normalisation folded into the convolutions (loadCheckpoint); 3: scores by data/metrics.ts (a tie no longer counts for the label; log-loss clipped at 1e-7, not 1e-12)
  description: 'Evaluate finetune checkpoints on val (config × epoch table) and select the n best.',
  params,
  inputs: predict.predictionInputs('finetune stages'),
  isolate: true,

  async run(ctx, p) {
    const { backend, tf, set } = await predict.openPrediction(ctx, p.backend);
    const rows = (set.splits[p.split] ?? []).filter((r) => r.label !== null);
    if (!rows.length) throw new InputError(`the ${p.split} split has no labelled images to evaluate checkpoints on`);
    const images = predict.splitImages(ctx.store, rows);
    const labels = rows.map((r) => r.label);
    const crops = String(p.crops) as CropSet;
    const k = set.classes.length;

    const models = ctx.inputs.models!;
    const evaluated: SelectionEntry[] = [];
    const chosen = (Array.isArray(models) ? models : [models]).flatMap((a) =>
      finetuneCheckpoints(ctx.store, a, chooseEpochs(epochsOf(a), p.epochs)),
    );
    const totalCrops =
      chosen.length *
      images.length *
      predict.cropsPerImage({ scales: [0], nested: crops === 'full' ? 0 : cropCount(crops), full: crops === 'full' });
    const progress = new predict.CropProgress(ctx, totalCrops);
    for (const ref of chosen) {
      const scale = p.scale ?? ref.inputSize;
      checkClasses(ref, set);
      const model = await predict.loadCheckpoint(tf, ctx.store, ref);
      try {
        const nested = crops === 'full' ? 0 : cropCount(crops);
        const out = await progress.predict(
          tf,
          model,
          images,
          { size: ref.inputSize, scales: [scale], nested, full: crops === 'full', batchSize: p.batchSize },
          `${ref.stageId} ${ref.epoch}`,
        );
        const probs = averageCrops(
          out.full
            ? [{ logits: out.full, stride: 1, crops: 1 }]
            : [{ logits: out.perScale[0]!, stride: nested, crops: nested }],
          images.length,
          k,
          'probs',
        );
        const metrics = scoreCheckpoint(probs, labels, k)!;
        evaluated.push({ ...ref, metrics });
        ctx.log(
          `${ref.stageId} ${ref.epoch}: top-1 ${metrics.top1.toFixed(4)}, top-3 ${metrics.top3.toFixed(4)}, loss ${metrics.loss.toFixed(4)}`,
        );
      } finally {
        model.dispose();
      }
    }
    ctx.log(`${evaluated.length} checkpoints, ${progress.summary()}`);
    if (!evaluated.length) throw new InputError('no checkpoint to evaluate');

    const selection = select(evaluated, p.metric, p.select);
    const table = {
      split: p.split,
      crops,
      scale: p.scale ?? 'inputSize',
      metric: p.metric,
      rows: evaluated.map((e) => ({
        stageId: e.stageId,
        epoch: e.epoch,
        checkpoint: e.checkpoint,
        ...e.metrics,
        selected: selection.includes(e),
      })),
    };
    const best = selection[0]!;
    return {
      outputs: {
        table: await ctx.store.putBlob(Buffer.from(JSON.stringify(table, null, 2))),
        selection: await ctx.store.putBlob(Buffer.from(JSON.stringify(selection, null, 2))),
      },
      refs: [...new Set(selection.map((s) => s.checkpoint))],
      metrics: {
        checkpoints: evaluated.length,
        best: `${best.stageId}:${best.epoch}`,
        valTop1: best.metrics.top1,
        valTop3: best.metrics.top3,
        valLoss: best.metrics.loss,
      },
      backend: backend.detail,
    };
  },
});

/** The epoch output names to evaluate, in order. `every k`: epochs k, 2k, … plus the last one. */
export function chooseEpochs(all: string[], how: SweepParams['epochs']): string[] {
  if (how === 'all') return all;
  if ('last' in how) return all.slice(-how.last);
  return all.filter((_, i) => (i + 1) % how.every === 0 || i === all.length - 1);
}

/** The n best by the metric; ties broken by loss, then by evaluation order (stable). */
export function select(entries: SelectionEntry[], metric: Metric, n: number): SelectionEntry[] {
  const key = (e: SelectionEntry): number => (metric === 'loss' ? e.metrics.loss : -e.metrics[metric]);
  return entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => key(a.e) - key(b.e) || a.e.metrics.loss - b.e.metrics.loss || a.i - b.i)
    .slice(0, n)
    .map(({ e }) => e);
}
