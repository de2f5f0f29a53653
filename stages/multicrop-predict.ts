// `multicrop-predict`: test-time augmentation. Every chosen checkpoint predicts every crop ('1'
// centre, '5' corners + centre, '10' those and their mirrors, 'full') of every image at every
// scale (shorter side), batched; the crops are cut from the decoded blobs in the cache (no JPEG is
// decoded again) and averaged as probabilities or logits into one Predictions artifact per
// checkpoint, `predictions:<model stage>:<epoch>`. The `table` output shows, on every labelled
// split (val, and test where the dataset has its labels), what each (crops, scale) combination
// scores, so a user sees what the crops and the scale bought; the best checkpoint is chosen on val.
//
// Crop sets nest (crops.ts): computing '10' gives '1' and '5' too, so the table lists every
// nested set up to the largest requested at no extra cost.
//
// Each row of that table is also kept as a candidate for `fuse`, `candidate:<model stage>:<epoch>:
// <crops>@<scale>`: averaging every scale into one prediction lets a harmful scale drag every
// member down (intel6: the fusion of averaged members scored below the best single (crops,
// scale) row), while fuse's selection on val can take only the rows that help.
import type { FromSchema } from 'json-schema-to-ts';
import type { Digest } from '../cache/canonical.js';
import { defineStage, InputError, type JsonSchema } from './contract.js';
import { checkClasses, checkpointsOf, scoreCheckpoint } from './data/checkpoint-refs.js';
import { averageCrops, cropCount, type CropSet } from './data/crops.js';
import { CANDIDATE_PREFIX, encodePredictions, type Predictions } from './data/predictions.js';
import type { BackendResolved } from './tf/backend-param.js';
import * as predict from './tf/predict.js';

const cropEnum = ['1', '5', '10', 'full', 1, 5, 10] as const;
export const cropsSchema = {
  oneOf: [{ enum: cropEnum }, { type: 'array', minItems: 1, items: { enum: cropEnum } }],
} as const;

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    crops: {
      ...cropsSchema,
      default: '10',
      description:
        "'1' centre | '5' corners + centre | '10' the 5 and their mirrors | 'full' whole image; or a list (all their crops are averaged).",
    },
    scales: {
      type: ['array', 'null'],
      items: { type: 'integer', minimum: 8 },
      minItems: 1,
      default: null,
      description: 'Shorter-side sizes to test at (default: the model inputSize and 8/7 of it, e.g. [224, 256]).',
    },
    average: {
      enum: ['probs', 'logits'],
      default: 'probs',
      description: 'Average the crops as probabilities, or average logits then softmax.',
    },
    splits: { type: 'array', items: { type: 'string' }, minItems: 1, default: ['val', 'test'] },
    ...predict.predictionParams,
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv, the backend resolved. */
export type MulticropParams = BackendResolved<FromSchema<typeof params>>;

export const multicropPredict = defineStage<MulticropParams>({
  name: 'multicrop-predict',
  version: 5, // 3: batch normalisation folded into the convolutions; 4: scores by data/metrics.ts (a tie no longer counts for the label; log-loss clipped at 1e-7, not 1e-12); 5: every (crops, scale) row kept as a candidate output
  description:
    'Predict val/test with every chosen checkpoint over crops and scales, averaged; one Predictions per checkpoint.',
  params,
  inputs: predict.predictionInputs('finetune stages (their last epoch) or checkpoint-sweep stages (their selection)'),
  isolate: true,

  async run(ctx, p) {
    const { backend, tf, set } = await predict.openPrediction(ctx, p.backend);
    const refs = checkpointsOf(ctx.store, ctx.inputs.models!);
    const splits = p.splits.filter((s) => set.splits[s]);
    for (const s of p.splits) if (!set.splits[s]) ctx.log(`split ${s} is not in the dataset: skipped`);
    if (!splits.length)
      throw new InputError(
        `none of the splits ${p.splits.join(', ')} is in the dataset (it has ${Object.keys(set.splits).join(', ')})`,
      );
    const requested = [...new Set((Array.isArray(p.crops) ? p.crops : [p.crops]).map((c) => String(c) as CropSet))];
    const nested = Math.max(0, ...requested.filter((c) => c !== 'full').map(cropCount));
    const full = requested.includes('full');

    const outputs: Record<string, Digest> = {};
    const table: Array<Record<string, unknown>> = [];
    let best: { name: string; top1: number; top3: number; loss: number } | undefined;
    const totalCrops = refs.reduce(
      (sum, ref) =>
        sum +
        splits.reduce((n, split) => n + set.splits[split]!.length, 0) *
          predict.cropsPerImage({ scales: p.scales ?? defaultScales(ref.inputSize), nested, full }),
      0,
    );
    const progress = new predict.CropProgress(ctx, totalCrops);
    for (const ref of refs) {
      checkClasses(ref, set);
      const scales = p.scales ?? defaultScales(ref.inputSize);
      const name = `predictions:${ref.stageId}:${ref.epoch}`;
      const model = await predict.loadCheckpoint(tf, ctx.store, ref);
      const preds: Predictions = { classes: set.classes, splits: {} };
      const candidates = new Map<string, Predictions>();
      try {
        for (const split of splits) {
          const rows = set.splits[split]!;
          const images = predict.splitImages(ctx.store, rows);
          const labels = rows.map((r) => r.label);
          const out = await progress.predict(
            tf,
            model,
            images,
            { size: ref.inputSize, scales, nested, full, batchSize: p.batchSize },
            `${ref.stageId} ${ref.epoch} · ${split}`,
          );
          const k = set.classes.length;
          const views = [
            ...scales.map((_, s) => ({ logits: out.perScale[s]!, stride: nested, crops: nested })),
            ...(out.full ? [{ logits: out.full, stride: 1, crops: 1 }] : []),
          ];
          const probs = averageCrops(views, images.length, k, p.average);
          preds.splits[split] = { ids: rows.map((r) => r.id), labels, probs };
          // What each (crops, scale) bought, on the labelled splits; each is a fusion candidate.
          const row = (crops: string, scale: number | 'all' | null, v: typeof views): void => {
            const candidateProbs = averageCrops(v, images.length, k, p.average);
            const candidate = `${CANDIDATE_PREFIX}:${ref.stageId}:${ref.epoch}:${crops}${scale === null ? '' : `@${scale}`}`;
            if (!candidates.has(candidate)) candidates.set(candidate, { classes: set.classes, splits: {} });
            candidates.get(candidate)!.splits[split] = { ids: preds.splits[split]!.ids, labels, probs: candidateProbs };
            const score = scoreCheckpoint(candidateProbs, labels, k);
            if (score) table.push({ split, stageId: ref.stageId, epoch: ref.epoch, crops, scale, ...score });
          };
          for (const c of [1, 5, 10].filter((c) => c <= nested)) {
            scales.forEach((scale, s) =>
              row(String(c), scale, [{ logits: out.perScale[s]!, stride: nested, crops: c }]),
            );
            if (scales.length > 1)
              row(
                String(c),
                'all',
                scales.map((_, s) => ({ logits: out.perScale[s]!, stride: nested, crops: c })),
              );
          }
          if (out.full) row('full', null, [{ logits: out.full, stride: 1, crops: 1 }]);
          // Several crop sets averaged: that prediction is a candidate of its own (one crop set is one already).
          if (requested.length > 1) {
            const candidate = `${CANDIDATE_PREFIX}:${ref.stageId}:${ref.epoch}:${requested.join('+')}@all`;
            if (!candidates.has(candidate)) candidates.set(candidate, { classes: set.classes, splits: {} });
            candidates.get(candidate)!.splits[split] = preds.splits[split]!;
          }
          const score = scoreCheckpoint(probs, labels, k);
          if (score)
            table.push({
              split,
              stageId: ref.stageId,
              epoch: ref.epoch,
              crops: requested.join('+'),
              scale: 'all',
              averaged: true,
              ...score,
            });
          if (score && split === 'val') {
            if (!best || score.top1 > best.top1 || (score.top1 === best.top1 && score.top3 > best.top3))
              best = { name, ...score };
            ctx.log(
              `${name}: val top-1 ${score.top1.toFixed(4)}, top-3 ${score.top3.toFixed(4)} (crops ${requested.join('+')}, scales ${scales.join(', ')}, ${p.average})`,
            );
          }
        }
      } finally {
        model.dispose();
      }
      outputs[name] = await ctx.store.putBlob(encodePredictions(preds));
      for (const [candidate, c] of candidates) outputs[candidate] = await ctx.store.putBlob(encodePredictions(c));
    }
    ctx.log(progress.summary());
    outputs.table = await ctx.store.putBlob(
      Buffer.from(JSON.stringify({ average: p.average, crops: requested, rows: table }, null, 2)),
    );
    return {
      outputs,
      metrics: best
        ? { valTop1: best.top1, valTop3: best.top3, valLoss: best.loss, best: best.name, checkpoints: refs.length }
        : { checkpoints: refs.length },
      backend: backend.detail,
    };
  },
});

/** "Train small, test large": the training size and 8/7 of it (224 → [224, 256]). */
export function defaultScales(inputSize: number): number[] {
  return [inputSize, Math.round((inputSize * 8) / 7)];
}
