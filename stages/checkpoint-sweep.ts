// `checkpoint-sweep`: evaluate the chosen epochs' checkpoints of one or more finetune stages (a
// matrix counts as many) on a split with a given crop setting, tabulate config × epoch → top-1,
// top-3, loss, and select the n best by a metric. multicrop-predict reads the `selection` output;
// the selected checkpoints are refs of this stage, so gc keeps them as long as it is referenced.
import { defineStage, InputError, type InputArtifact } from './contract.js';
import { averageCrops, cropCount, scoreProbs, type CropSet } from './data/crops.js';
import type { DecodedSet } from './data/decoded.js';
import { readJson } from './data/artifacts.js';
import type { BackendPreference } from './tf/backend-names.js';
import { backendSchema } from './tf/backend-param.js';
import { checkClasses, epochsOf, loadCheckpoint, predictCrops, splitImages, type CheckpointRef, type SelectionEntry } from './multicrop-predict.js';

type Metric = 'top1' | 'top3' | 'loss';

export interface SweepParams {
  epochs: 'all' | { last: number } | { every: number };
  crops: CropSet | number;
  scale: number | null;
  metric: Metric;
  select: number;
  split: string;
  batchSize: number;
  backend: BackendPreference;
}

export const checkpointSweep = defineStage<SweepParams>({
  name: 'checkpoint-sweep',
  version: 2, // 2: batch normalisation folded into the convolutions (loadCheckpoint)
  description: 'Evaluate finetune checkpoints on val (config × epoch table) and select the n best.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      epochs: {
        oneOf: [
          { const: 'all' },
          { type: 'object', required: ['last'], additionalProperties: false, properties: { last: { type: 'integer', minimum: 1 } } },
          { type: 'object', required: ['every'], additionalProperties: false, properties: { every: { type: 'integer', minimum: 1 } } },
        ],
        default: 'all',
        description: "'all', { last: k } (the last k epochs) or { every: k } (epochs k, 2k, …, and always the last).",
      },
      crops: { enum: ['1', '5', '10', 'full', 1, 5, 10], default: '1', description: 'Crops each checkpoint is evaluated with (averaged as probabilities).' },
      scale: { type: ['integer', 'null'], minimum: 8, default: null, description: 'Shorter-side size to test at (default: the model inputSize).' },
      metric: { enum: ['top1', 'top3', 'loss'], default: 'top1', description: 'Selection metric (higher top-k is better, lower loss is better; ties: lower loss, then earlier).' },
      select: { type: 'integer', minimum: 1, default: 3, description: 'How many checkpoints to select.' },
      split: { type: 'string', default: 'val' },
      batchSize: { type: 'integer', minimum: 1, default: 32, description: 'Crops per forward pass.' },
      backend: backendSchema,
    },
  },
  inputs: {
    models: { many: true, required: true, description: 'finetune stages' },
    images: { many: false, required: true, description: 'a decode stage', reads: ['images'] },
  },
  isolate: true,

  async run(ctx, p) {
    const backend = await (await import('./tf/backend.js')).stageBackend(ctx, p.backend);
    const tf = backend.tf;
    const set = readJson<DecodedSet>(ctx.store, (ctx.inputs.images as InputArtifact).outputs.images!);
    const rows = (set.splits[p.split] ?? []).filter((r) => r.label !== null);
    if (!rows.length) throw new InputError(`the ${p.split} split has no labelled images to evaluate checkpoints on`);
    const images = splitImages(ctx.store, rows);
    const labels = rows.map((r) => r.label);
    const crops = String(p.crops) as CropSet;
    const k = set.classes.length;

    const models = ctx.inputs.models!;
    const evaluated: SelectionEntry[] = [];
    let count = 0;
    const t0 = Date.now();
    for (const a of Array.isArray(models) ? models : [models]) {
      if (!a.outputs.history) throw new InputError(`${a.stageId} is not a finetune stage (it has no history output)`);
      const h = readJson<{ classes: string[]; inputSize: number }>(ctx.store, a.outputs.history);
      const epochs = chooseEpochs(epochsOf(a), p.epochs);
      const scale = p.scale ?? h.inputSize;
      for (const epoch of epochs) {
        const ref: CheckpointRef = { stageId: a.stageId, epoch, checkpoint: a.outputs[epoch]!, inputSize: h.inputSize, classes: h.classes };
        checkClasses(ref, set);
        const model = await loadCheckpoint(tf, ctx.store, ref);
        try {
          const nested = crops === 'full' ? 0 : cropCount(crops);
          const out = await predictCrops(tf, model, images, { size: h.inputSize, scales: [scale], nested, full: crops === 'full', batchSize: p.batchSize });
          count += out.crops;
          const probs = averageCrops(out.full ? [{ logits: out.full, stride: 1, crops: 1 }] : [{ logits: out.perScale[0]!, stride: nested, crops: nested }], images.length, k, 'probs');
          const metrics = scoreProbs(probs, labels, k)!;
          evaluated.push({ ...ref, metrics });
          ctx.log(`${a.stageId} ${epoch}: top-1 ${metrics.top1.toFixed(4)}, top-3 ${metrics.top3.toFixed(4)}, loss ${metrics.loss.toFixed(4)}`);
        } finally {
          model.dispose();
        }
      }
    }
    const seconds = (Date.now() - t0) / 1000;
    ctx.log(`${evaluated.length} checkpoints, ${count} crops in ${seconds.toFixed(1)} s: ${(count / Math.max(seconds, 1e-3)).toFixed(1)} crops/s`);
    if (!evaluated.length) throw new InputError('no checkpoint to evaluate');

    const selection = select(evaluated, p.metric, p.select);
    const table = {
      split: p.split, crops, scale: p.scale ?? 'inputSize', metric: p.metric,
      rows: evaluated.map((e) => ({ stageId: e.stageId, epoch: e.epoch, checkpoint: e.checkpoint, ...e.metrics, selected: selection.includes(e) })),
    };
    const best = selection[0]!;
    return {
      outputs: {
        table: await ctx.store.putBlob(Buffer.from(JSON.stringify(table, null, 2))),
        selection: await ctx.store.putBlob(Buffer.from(JSON.stringify(selection, null, 2))),
      },
      refs: [...new Set(selection.map((s) => s.checkpoint))],
      metrics: { checkpoints: evaluated.length, best: `${best.stageId}:${best.epoch}`, valTop1: best.metrics.top1, valTop3: best.metrics.top3, valLoss: best.metrics.loss },
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
