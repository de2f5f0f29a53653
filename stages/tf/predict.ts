// Prediction with a checkpoint, shared by checkpoint-sweep and multicrop-predict: a checkpoint
// loaded as a logits predictor (batch normalisation folded), the decoded images of a split read
// one at a time from the cache (views, no copy), and every test-time crop of them predicted in
// fixed batches.
// TensorFlow.js is passed in or imported on use, so the stages that import this module load it
// only inside their worker.
import { InputError, type InputArtifact, type InputSpec, type StageContext, type StageStore } from '../contract.js';
import type { RawImage } from '../data/augment/index.js';
import { blobOf, readJson } from '../data/artifacts.js';
import type { CheckpointRef } from '../data/checkpoint-refs.js';
import { resizeShorter, writeCrops, type CropSet } from '../data/crops.js';
import { decodeDecoded, type DecodedSet } from '../data/decoded.js';
import type { BackendPreference, SelectedBackend } from './backend.js';
import { backendSchema } from './backend-param.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Tensor4D = import('@tensorflow/tfjs-core').Tensor4D;
type LayersModel = import('@tensorflow/tfjs-layers').LayersModel;

/** The params both prediction stages share: how many crops go through the model at once, and on which backend. */
export const predictionParams = {
  batchSize: { type: 'integer', minimum: 1, default: 32, description: 'Crops per forward pass.' },
  backend: backendSchema,
} as const;

/** The inputs both prediction stages take: checkpoints (described per stage) and the decoded images. */
export function predictionInputs(models: string): Record<'models' | 'images', InputSpec> {
  return {
    models: { many: true, required: true, description: models },
    images: { many: false, required: true, description: 'a decode stage', reads: ['images'] },
  };
}

/** How both prediction stages start: the stage's backend, and the decoded set of its `images` input. */
export async function openPrediction(
  ctx: StageContext,
  pref: BackendPreference,
): Promise<{ backend: SelectedBackend; tf: Tf; set: DecodedSet }> {
  const backend = await (await import('./backend.js')).stageBackend(ctx, pref);
  const set = readJson<DecodedSet>(ctx.store, (ctx.inputs.images as InputArtifact).outputs.images!);
  return { backend, tf: backend.tf, set };
}

/** A checkpoint ready to predict: NHWC pixels in [0, 1] → logits (or log-probabilities). */
export interface Predictor {
  predict(x: Tensor4D): Tensor;
  dispose(): void;
}

/**
 * A checkpoint as a model that outputs logits: models from models.ts end in head_logits →
 * softmax; the softmax is cut off so crops can be averaged as logits. A model without that layer
 * is used as is, its probabilities turned into log-probabilities (equivalent up to a constant).
 * Batch normalisation is folded into the convolutions (tf/inference.ts): 1.27× faster on MobileNetV2 at 224 px (node bench/train.mjs).
 */
export async function loadCheckpoint(tf: Tf, store: StageStore, ref: CheckpointRef): Promise<Predictor> {
  const tfl = await import('@tensorflow/tfjs-layers');
  const { modelFromBlob } = await import('./checkpoint.js');
  const { HEAD_LOGITS } = await import('./models.js');
  const { foldedPredictor } = await import('./inference.js');
  const model: LayersModel = await modelFromBlob(tf, tfl, blobOf(store, ref.checkpoint));
  const layer = model.layers.find((l) => l.name === HEAD_LOGITS);
  const dispose = (p: { dispose(): void }) => () => {
    p.dispose();
    model.dispose();
  };
  if (layer) {
    const logits = foldedPredictor(
      tf,
      tfl.model({ inputs: model.inputs, outputs: layer.output as import('@tensorflow/tfjs-layers').SymbolicTensor }),
    );
    return { predict: (x) => logits.predict(x), dispose: dispose(logits) };
  }
  const probs = foldedPredictor(tf, model);
  return { predict: (x) => tf.log(tf.maximum(probs.predict(x), 1e-30)), dispose: dispose(probs) };
}

/**
 * The images to predict: an array, or a count and a reader that lends image i to `fn` (a view of
 * a decoded blob in the cache, valid only inside `fn`), so a split is never in memory at once.
 */
export type ImageSource = ReadonlyArray<RawImage> | { length: number; read<T>(i: number, fn: (img: RawImage) => T): T };

export interface CropPlan {
  size: number;
  scales: number[];
  /** Crops per image per scale from the nested order (0, 1, 5 or 10). */
  nested: number;
  full: boolean;
  batchSize: number;
  /**
   * Called with the number of crops predicted so far after each batch. The function then yields
   * to the event loop, so a worker process can send the update while the model keeps the CPU.
   */
  onProgress?: (cropsDone: number) => void;
}

/** Crops predictCrops makes for `images` images under a plan (for progress totals). */
export function cropsPerImage(plan: Pick<CropPlan, 'scales' | 'nested' | 'full'>): number {
  return plan.scales.length * plan.nested + (plan.full ? 1 : 0);
}

/**
 * A stage's crop count across its predictCrops calls: each call's batches are reported to the
 * stage's progress bar on top of the earlier calls' crops, out of `total`, and `summary()` gives
 * the closing log line's throughput.
 */
export class CropProgress {
  private done = 0;
  private readonly started = Date.now();

  constructor(
    private readonly ctx: Pick<StageContext, 'progress'>,
    private readonly total: number,
  ) {}

  /** predictCrops with its progress counted here; `detail` is shown beside the bar. */
  async predict(
    tf: Tf,
    model: Pick<Predictor, 'predict'>,
    images: ImageSource,
    plan: Omit<CropPlan, 'onProgress'>,
    detail: string,
  ): Promise<Awaited<ReturnType<typeof predictCrops>>> {
    const before = this.done;
    const out = await predictCrops(tf, model, images, {
      ...plan,
      onProgress: (done) => this.ctx.progress({ unit: 'crops', done: before + done, total: this.total, detail }),
    });
    this.done += out.crops;
    return out;
  }

  /** "N crops in S s: R crops/s". */
  summary(): string {
    const seconds = (Date.now() - this.started) / 1000;
    return `${this.done} crops in ${seconds.toFixed(1)} s: ${(this.done / Math.max(seconds, 1e-3)).toFixed(1)} crops/s`;
  }
}

/**
 * Logits of every crop: perScale[s] is n × nested × k (image-major, crops in crops.ts order),
 * full (if asked) n × k. Crops from consecutive images share batches of `batchSize`; batch
 * composition depends only on the inputs, so results are bit-identical across runs. Async
 * because the webgpu backend reads results back only asynchronously under Node.
 */
export async function predictCrops(
  tf: Tf,
  model: Pick<Predictor, 'predict'>,
  images: ImageSource,
  plan: CropPlan,
): Promise<{ perScale: Float32Array[]; full?: Float32Array; crops: number }> {
  const { size, scales, nested, batchSize } = plan;
  for (const s of scales)
    if (nested && s < size) throw new InputError(`scale ${s} is smaller than the model's input size ${size}`);
  const per = size * size * 3;
  const batch = new Float32Array(batchSize * per);
  const dest: Array<{ out: Float32Array; row: number }> = [];
  const perScale = scales.map(() => new Float32Array(0));
  let full: Float32Array | undefined;
  let k = 0;
  let pending: Array<() => void> = [];
  let total = 0;

  let flushed = 0;
  const flush = async (): Promise<void> => {
    const n = dest.length;
    if (!n) return;
    flushed++;
    // data(), not dataSync(): the webgpu backend reads back only asynchronously under Node.
    const out = tf.tidy(() => model.predict(tf.tensor4d(batch.subarray(0, n * per), [n, size, size, 3])));
    const logits = (await out.data()) as Float32Array;
    out.dispose();
    if (!k) {
      k = logits.length / n;
      scales.forEach((_, s) => {
        perScale[s] = new Float32Array(images.length * nested * k);
      });
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
    if (k) d.out = target();
    else
      pending.push(() => {
        d.out = target();
      });
    dest.push(d);
    total++;
    if (dest.length === batchSize) await flush();
  };

  // All of an image's crops are cut while it is lent (synchronously), then batched: the batches
  // await the backend, and the image is not valid across an await.
  const tmp = new Float32Array(Math.max(cropsPerImage(plan), 1) * per);
  const set: CropSet = nested === 10 ? '10' : nested === 5 ? '5' : '1';
  const cut = (img: RawImage): void => {
    for (const [s, scale] of scales.entries()) {
      if (!nested) break;
      writeCrops(img, set, scale, size, tmp, s * nested * per, resizeShorter(img, scale));
    }
    if (plan.full) writeCrops(img, 'full', size, size, tmp, scales.length * nested * per);
  };
  for (let i = 0; i < images.length; i++) {
    if ('read' in images) images.read(i, cut);
    else cut(images[i]!);
    for (let s = 0; s < scales.length && nested; s++) {
      for (let c = 0; c < nested; c++)
        await push(
          tmp.subarray((s * nested + c) * per, (s * nested + c + 1) * per),
          () => perScale[s]!,
          i * nested + c,
        );
    }
    if (plan.full)
      await push(tmp.subarray(scales.length * nested * per, (scales.length * nested + 1) * per), () => full!, i);
    if (plan.onProgress && flushed) {
      flushed = 0;
      plan.onProgress(total - dest.length);
      await new Promise((r) => setImmediate(r));
    }
  }
  await flush();
  plan.onProgress?.(total);
  return { perScale, ...(full ? { full } : {}), crops: total };
}

/** A split's decoded images, lent one at a time from the cache without a copy (no JPEG is decoded). */
export function splitImages(
  store: StageStore,
  rows: DecodedSet['splits'][string],
): Exclude<ImageSource, ReadonlyArray<RawImage>> {
  return {
    length: rows.length,
    read: (i, fn) => store.withBlobs([rows[i]!.blob], ([view]) => fn(decodeDecoded(view!))),
  };
}
