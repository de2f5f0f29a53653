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
import type { Digest } from '../cache/canonical.js';
import type { Store } from '../cache/store.js';
import { defineStage, InputError, type InputArtifact, type InputValue } from './contract.js';
import { averageCrops, cropCount, resizeShorter, scoreProbs, softmaxRows, writeCrops, type CropSet } from './data/crops.js';
import type { RawImage } from './data/augment-ops.js';
import { decodeDecoded, type DecodedSet } from './data/decoded.js';
import { encodePredictions, type Predictions } from './data/predictions.js';
import { blobOf, readJson } from './data/artifacts.js';
import type { BackendPreference } from './tf/backend-names.js';
import { backendSchema } from './tf/backend-param.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type LayersModel = import('@tensorflow/tfjs-layers').LayersModel;
type Backend = BackendPreference;
type Average = 'probs' | 'logits';

export interface MulticropParams {
  crops: CropSet | number | Array<CropSet | number>;
  scales: number[] | null;
  average: Average;
  splits: string[];
  batchSize: number;
  backend: Backend;
}

/** One checkpoint to predict with. */
export interface CheckpointRef {
  stageId: string;
  epoch: string;
  checkpoint: Digest;
  inputSize: number;
  classes: string[];
}

/** What checkpoint-sweep writes as its `selection` output (a JSON list). */
export interface SelectionEntry extends CheckpointRef {
  metrics: { top1: number; top3: number; loss: number };
}

const cropEnum = ['1', '5', '10', 'full', 1, 5, 10];
export const cropsSchema = { oneOf: [{ enum: cropEnum }, { type: 'array', minItems: 1, items: { enum: cropEnum } }] };

export const multicropPredict = defineStage<MulticropParams>({
  name: 'multicrop-predict',
  version: 3, // 3: batch normalisation folded into the convolutions
  description: 'Predict val/test with every chosen checkpoint over crops and scales, averaged; one Predictions per checkpoint.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      crops: { ...cropsSchema, default: '10', description: "'1' centre | '5' corners + centre | '10' the 5 and their mirrors | 'full' whole image; or a list (all their crops are averaged)." },
      scales: { type: ['array', 'null'], items: { type: 'integer', minimum: 8 }, minItems: 1, default: null, description: 'Shorter-side sizes to test at (default: the model inputSize and 8/7 of it, e.g. [224, 256]).' },
      average: { enum: ['probs', 'logits'], default: 'probs', description: 'Average the crops as probabilities, or average logits then softmax.' },
      splits: { type: 'array', items: { type: 'string' }, minItems: 1, default: ['val', 'test'] },
      batchSize: { type: 'integer', minimum: 1, default: 32, description: 'Crops per forward pass.' },
      backend: backendSchema,
    },
  },
  inputs: {
    models: { many: true, required: true, description: 'finetune stages (their last epoch) or checkpoint-sweep stages (their selection)' },
    images: { many: false, required: true, description: 'a decode stage', reads: ['images'] },
  },
  isolate: true,

  async run(ctx, p) {
    const backend = await (await import('./tf/backend.js')).stageBackend(ctx, p.backend);
    const tf = backend.tf;
    const set = readJson<DecodedSet>(ctx.store, (ctx.inputs.images as InputArtifact).outputs.images!);
    const refs = checkpointsOf(ctx.store, ctx.inputs.models!);
    const splits = p.splits.filter((s) => set.splits[s]);
    for (const s of p.splits) if (!set.splits[s]) ctx.log(`split ${s} is not in the dataset: skipped`);
    if (!splits.length) throw new InputError(`none of the splits ${p.splits.join(', ')} is in the dataset (it has ${Object.keys(set.splits).join(', ')})`);
    const requested = [...new Set((Array.isArray(p.crops) ? p.crops : [p.crops]).map((c) => String(c) as CropSet))];
    const nested = Math.max(0, ...requested.filter((c) => c !== 'full').map(cropCount));
    const full = requested.includes('full');

    const outputs: Record<string, Digest> = {};
    const table: Array<Record<string, unknown>> = [];
    let best: { name: string; top1: number; top3: number; loss: number } | undefined;
    let crops = 0;
    const t0 = Date.now();
    for (const ref of refs) {
      checkClasses(ref, set);
      const scales = p.scales ?? defaultScales(ref.inputSize);
      const name = `predictions:${ref.stageId}:${ref.epoch}`;
      const model = await loadCheckpoint(tf, ctx.store, ref);
      const preds: Predictions = { classes: set.classes, splits: {} };
      try {
        for (const split of splits) {
          const rows = set.splits[split]!;
          const images = splitImages(ctx.store, rows);
          const labels = rows.map((r) => r.label);
          const out = await predictCrops(tf, model, images, { size: ref.inputSize, scales, nested, full, batchSize: p.batchSize });
          crops += out.crops;
          const k = set.classes.length;
          const views = [...scales.map((_, s) => ({ logits: out.perScale[s]!, stride: nested, crops: nested })), ...(out.full ? [{ logits: out.full, stride: 1, crops: 1 }] : [])];
          const probs = averageCrops(views, images.length, k, p.average);
          preds.splits[split] = { ids: rows.map((r) => r.id), labels, probs };
          if (labels.every((l) => l === null)) continue;
          // What each (crops, scale) bought.
          const row = (crops: string, scale: number | 'all' | null, v: typeof views): void => {
            const score = scoreProbs(averageCrops(v, images.length, k, p.average), labels, k);
            if (score) table.push({ split, stageId: ref.stageId, epoch: ref.epoch, crops, scale, ...score });
          };
          for (const c of [1, 5, 10].filter((c) => c <= nested)) {
            scales.forEach((scale, s) => row(String(c), scale, [{ logits: out.perScale[s]!, stride: nested, crops: c }]));
            if (scales.length > 1) row(String(c), 'all', scales.map((_, s) => ({ logits: out.perScale[s]!, stride: nested, crops: c })));
          }
          if (out.full) row('full', null, [{ logits: out.full, stride: 1, crops: 1 }]);
          const score = scoreProbs(probs, labels, k);
          if (score) table.push({ split, stageId: ref.stageId, epoch: ref.epoch, crops: requested.join('+'), scale: 'all', averaged: true, ...score });
          if (score && split === 'val') {
            if (!best || score.top1 > best.top1 || (score.top1 === best.top1 && score.top3 > best.top3)) best = { name, ...score };
            ctx.log(`${name}: val top-1 ${score.top1.toFixed(4)}, top-3 ${score.top3.toFixed(4)} (crops ${requested.join('+')}, scales ${scales.join(', ')}, ${p.average})`);
          }
        }
      } finally {
        model.dispose();
      }
      outputs[name] = await ctx.store.putBlob(encodePredictions(preds));
    }
    const seconds = (Date.now() - t0) / 1000;
    ctx.log(`${crops} crops in ${seconds.toFixed(1)} s: ${(crops / Math.max(seconds, 1e-3)).toFixed(1)} crops/s`);
    outputs.table = await ctx.store.putBlob(Buffer.from(JSON.stringify({ average: p.average, crops: requested, rows: table }, null, 2)));
    return {
      outputs,
      metrics: best ? { valTop1: best.top1, valTop3: best.top3, valLoss: best.loss, best: best.name, checkpoints: refs.length } : { checkpoints: refs.length },
      backend: backend.detail,
    };
  },
});

/** "Train small, test large": the training size and 8/7 of it (224 → [224, 256]). */
export function defaultScales(inputSize: number): number[] {
  return [inputSize, Math.round((inputSize * 8) / 7)];
}

/**
 * The checkpoints named by a `models` input: a finetune stage gives its last epoch, a
 * checkpoint-sweep stage every entry of its selection. Duplicates are dropped; order is the
 * inputs' order, then epoch order / selection order.
 */
export function checkpointsOf(store: Store, value: InputValue): CheckpointRef[] {
  const out: CheckpointRef[] = [];
  const seen = new Set<string>();
  const add = (r: CheckpointRef): void => {
    const id = `${r.stageId}:${r.epoch}`;
    if (!seen.has(id)) { seen.add(id); out.push(r); }
  };
  for (const a of Array.isArray(value) ? value : [value]) {
    if (a.outputs.selection) {
      for (const e of readJson<SelectionEntry[]>(store, a.outputs.selection)) add({ stageId: e.stageId, epoch: e.epoch, checkpoint: e.checkpoint, inputSize: e.inputSize, classes: e.classes });
    } else if (a.outputs.history) {
      const last = epochsOf(a).at(-1);
      if (!last) throw new InputError(`${a.stageId} has no checkpoints`);
      const h = readJson<{ classes: string[]; inputSize: number }>(store, a.outputs.history);
      add({ stageId: a.stageId, epoch: last, checkpoint: a.outputs[last]!, inputSize: h.inputSize, classes: h.classes });
    } else {
      throw new InputError(`${a.stageId} is neither a finetune stage (no history output) nor a checkpoint-sweep stage (no selection output)`);
    }
  }
  return out;
}

/** A finetune stage's checkpoint output names, in epoch order. */
export function epochsOf(a: InputArtifact): string[] {
  return Object.keys(a.outputs).filter((n) => /^epoch-\d+$/.test(n)).sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
}

export function checkClasses(ref: CheckpointRef, set: DecodedSet): void {
  if (ref.classes.length !== set.classes.length || ref.classes.some((c, i) => c !== set.classes[i])) {
    throw new InputError(`${ref.stageId} ${ref.epoch} was trained on classes [${ref.classes.slice(0, 5).join(', ')}${ref.classes.length > 5 ? ', …' : ''}], the images have [${set.classes.slice(0, 5).join(', ')}${set.classes.length > 5 ? ', …' : ''}]`);
  }
}

/**
 * A checkpoint as a model that outputs logits: models from models.ts end in head_logits →
 * softmax; the softmax is cut off so crops can be averaged as logits. A model without that layer
 * is used as is, its probabilities turned into log-probabilities (equivalent up to a constant).
 * Batch normalisation is folded into the convolutions (tf/inference.ts): 1.27× faster on MobileNetV2 at 224 px (node bench/train.mjs).
 */
export async function loadCheckpoint(tf: Tf, store: Store, ref: CheckpointRef): Promise<{ predict(x: import('@tensorflow/tfjs-core').Tensor4D): import('@tensorflow/tfjs-core').Tensor; dispose(): void }> {
  const tfl = await import('@tensorflow/tfjs-layers');
  const { modelFromBlob } = await import('./tf/checkpoint.js');
  const { HEAD_LOGITS } = await import('./tf/models.js');
  const { foldedPredictor } = await import('./tf/inference.js');
  const model: LayersModel = await modelFromBlob(tf, tfl, blobOf(store, ref.checkpoint));
  const layer = model.layers.find((l) => l.name === HEAD_LOGITS);
  const dispose = (p: { dispose(): void }) => () => { p.dispose(); model.dispose(); };
  if (layer) {
    const logits = foldedPredictor(tf, tfl.model({ inputs: model.inputs, outputs: layer.output as import('@tensorflow/tfjs-layers').SymbolicTensor }));
    return { predict: (x) => logits.predict(x), dispose: dispose(logits) };
  }
  const probs = foldedPredictor(tf, model);
  return { predict: (x) => tf.log(tf.maximum(probs.predict(x), 1e-30)), dispose: dispose(probs) };
}

/**
 * The images to predict: an array, or a count and a loader (e.g. reading a decoded blob from the
 * cache), so a large split never has to be in memory at once.
 */
export type ImageSource = ReadonlyArray<RawImage> | { length: number; get(i: number): RawImage };

export interface CropPlan {
  size: number;
  scales: number[];
  /** Crops per image per scale from the nested order (0, 1, 5 or 10). */
  nested: number;
  full: boolean;
  batchSize: number;
}

/**
 * Logits of every crop: perScale[s] is n × nested × k (image-major, crops in crops.ts order),
 * full (if asked) n × k. Crops from consecutive images share batches of `batchSize`; batch
 * composition depends only on the inputs, so results are bit-identical across runs. Async
 * because the webgpu backend reads results back only asynchronously under Node.
 */
export async function predictCrops(tf: Tf, model: { predict(x: import('@tensorflow/tfjs-core').Tensor4D): import('@tensorflow/tfjs-core').Tensor }, images: ImageSource, plan: CropPlan): Promise<{ perScale: Float32Array[]; full?: Float32Array; crops: number }> {
  const { size, scales, nested, batchSize } = plan;
  for (const s of scales) if (nested && s < size) throw new InputError(`scale ${s} is smaller than the model's input size ${size}`);
  const per = size * size * 3;
  const batch = new Float32Array(batchSize * per);
  const dest: Array<{ out: Float32Array; row: number }> = [];
  const perScale = scales.map(() => new Float32Array(0));
  let full: Float32Array | undefined;
  let k = 0;
  let pending: Array<() => void> = [];
  let total = 0;

  const flush = async (): Promise<void> => {
    const n = dest.length;
    if (!n) return;
    const out = tf.tidy(() => model.predict(tf.tensor4d(batch.subarray(0, n * per), [n, size, size, 3])));
    const logits = (await out.data()) as Float32Array;
    out.dispose();
    if (!k) {
      k = logits.length / n;
      scales.forEach((_, s) => { perScale[s] = new Float32Array(images.length * nested * k); });
      if (plan.full) full = new Float32Array(images.length * k);
      for (const f of pending) f();
      pending = [];
    }
    dest.forEach((d, i) => d.out.set(logits.subarray(i * k, (i + 1) * k), d.row * k));
    dest.length = 0;
  };
  // Targets are allocated once k is known (after the first batch): record destinations lazily.
  const push = async (crop: Float32Array, target: () => Float32Array, row: number): Promise<void> => {
    batch.set(crop, dest.length * per);
    const d: { out: Float32Array; row: number } = { out: new Float32Array(0), row };
    if (k) d.out = target(); else pending.push(() => { d.out = target(); });
    dest.push(d);
    total++;
    if (dest.length === batchSize) await flush();
  };

  const tmp = new Float32Array(Math.max(nested, 1) * per);
  const imageAt = 'get' in images ? (i: number) => images.get(i) : (i: number) => images[i]!;
  for (let i = 0; i < images.length; i++) {
    const img = imageAt(i);
    for (const [s, scale] of scales.entries()) {
      if (!nested) break;
      const resized = resizeShorter(img, scale);
      const set: CropSet = nested === 10 ? '10' : nested === 5 ? '5' : '1';
      writeCrops(img, set, scale, size, tmp, 0, resized);
      for (let c = 0; c < nested; c++) await push(tmp.subarray(c * per, (c + 1) * per), () => perScale[s]!, i * nested + c);
    }
    if (plan.full) {
      writeCrops(img, 'full', size, size, tmp, 0);
      await push(tmp.subarray(0, per), () => full!, i);
    }
  }
  await flush();
  return { perScale, ...(full ? { full } : {}), crops: total };
}

/** A split's decoded images, read from the cache one at a time (no JPEG is decoded). */
export function splitImages(store: Store, rows: DecodedSet['splits'][string]): { length: number; get(i: number): RawImage } {
  return { length: rows.length, get: (i) => decodeDecoded(blobOf(store, rows[i]!.blob)) };
}


// softmaxRows is re-exported for stages that turn logits from predictCrops into probabilities.
export { softmaxRows };
