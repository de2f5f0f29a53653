// `finetune`: the heart of the recipe. Load a pretrained CNN (or any tfjs LayersModel), put a
// new head on it for the dataset's classes, and train with every layer open: SGD with momentum
// and weight decay, a step learning-rate schedule, label smoothing. Every epoch's checkpoint is
// an output (checkpoint-sweep picks among them), and each epoch's weights and optimizer state are
// indexed under the stage key as they are made, so a killed run resumes at the last epoch.
import type { FromSchema } from 'json-schema-to-ts';
import type { Digest } from '../cache/canonical.js';
import { defineStage, InputError, type InputArtifact, type JsonSchema, type StageStore } from './contract.js';
import type { AugmentPolicy, RawImage } from './data/augment/index.js';
import { readJson } from './data/artifacts.js';
import { decodeDecoded, type DecodedSet } from './data/decoded.js';
import { scoreRows } from './data/metrics.js';
import { hashInts, Rng, STREAM } from './data/random.js';
import { backendSchema, type BackendResolved } from './tf/backend-param.js';
import { workersBackendProblem, workersSchema } from './tf/data-parallel-param.js';
import { HEAD_INITS } from './tf/head-init-param.js';
import { digestOf } from '../cache/canonical.js';
import { TrainingProgress } from './data/training-progress.js';

/** Part of every key, and of the line of runs whose epochs a longer run may continue from. */
const FINETUNE_VERSION = 8;

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: {
      type: 'string',
      default: 'mobilenet_v2',
      description: 'mobilenet_v2 | inception_v3 (offline, from nsfwjs) | tiny | a path to a tfjs model.json',
    },
    cutAt: {
      type: ['string', 'null'],
      default: null,
      description: 'Layer whose output feeds the new head (defaults per built-in model).',
    },
    inputSize: { type: 'integer', minimum: 16, default: 224 },
    epochs: { type: 'integer', minimum: 1, default: 30 },
    batchSize: { type: 'integer', minimum: 1, default: 32 },
    lr: { type: 'number', exclusiveMinimum: 0, default: 0.01 },
    lrSteps: {
      type: 'array',
      items: { type: 'integer', minimum: 0 },
      default: [20],
      description: 'Epochs at which lr is multiplied by lrFactor (MXNet fine-tune.py).',
    },
    lrFactor: { type: 'number', exclusiveMinimum: 0, default: 0.1 },
    momentum: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    weightDecay: { type: 'number', minimum: 0, default: 0 },
    optimizer: { enum: ['sgd', 'adam'], default: 'sgd' },
    trainable: {
      oneOf: [
        { enum: ['all', 'head'] },
        { type: 'object', required: ['from'], additionalProperties: false, properties: { from: { type: 'string' } } },
      ],
      default: 'all',
    },
    labelSmoothing: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    headDropout: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    headInit: {
      enum: HEAD_INITS,
      default: 'normal-0.01',
      description:
        "The new classifier's initial kernel: 'normal-0.01' N(0, 0.01²) as torchvision (small first logits, the pretrained layers barely disturbed early), or 'glorot-uniform', Keras's default for Dense.",
    },
    batchNormMomentum: {
      type: ['number', 'null'],
      minimum: 0,
      maximum: 1,
      default: 0.9,
      description:
        "Moving-average momentum of every BatchNormalization layer (Keras/MXNet sense; MXNet's default 0.9). nsfwjs's MobileNetV2 ships 0.999, whose moving statistics barely follow a short fine-tune, so evaluation lags training. null keeps the model's own.",
    },
    backend: backendSchema,
    workers: workersSchema,
    evalSplit: { type: 'string', default: 'val', description: 'Split evaluated after every epoch (centre crop).' },
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv, the backend resolved. */
export type FinetuneParams = BackendResolved<FromSchema<typeof params>>;

export const finetune = defineStage<FinetuneParams>({
  name: 'finetune',
  version: FINETUNE_VERSION, // 2: 1×1 filter gradients as a matrix product; 3: depthwise filter gradients by podium's SIMD kernel; 4: batch-norm statistics by podium's kernels (same maths, other float rounding); 5: val metrics by data/metrics.ts (a tie no longer counts for the label; log-loss clipped at 1e-7, not 1e-12), and augmentation, shuffling and Dropout seeds drawn from data/random.ts's one hash and PRNG (other streams); 6: Conv2D filter gradients by podium's SIMD kernel on the wasm backend (sums over fixed chunks of 4096 positions, in order: other float rounding); 7: depthwise input gradients gathered by podium's kernel (taps summed in row-major order: other float rounding), ReLU6 clipped in the batch-norm pass before it; 8: the normal-0.01 head drawn from podium's Rng (tfjs's randomNormal takes seed 0 for none)
  description: 'Fine-tune a pretrained CNN with all layers open; a checkpoint per epoch.',
  params,
  inputs: {
    images: { many: false, required: true, description: 'a decode stage', reads: ['images'] },
    augment: {
      many: false,
      required: false,
      description: 'an augment stage (default: level 1 at inputSize)',
      reads: ['policy'],
    },
  },
  isolate: true,
  check(p) {
    // An explicit GPU/native backend is known now; `auto` is only resolved when the stage runs.
    const problem = p.backend === 'auto' ? undefined : workersBackendProblem(p.workers ?? 1, p.backend);
    return problem ? [{ param: 'workers', message: problem }] : [];
  },

  async run(ctx, p) {
    const { stageBackend } = await import('./tf/backend.js');
    const { loadModel } = await import('./tf/models.js');
    const { train } = await import('./tf/train-loop.js');
    const { modelToBlob, modelFromBlob } = await import('./tf/checkpoint.js');
    const { encodeOptimizer, decodeOptimizer } = await import('./tf/optimizer.js');
    const { augmentBatch, centerCrop, policyForLevel } = await import('./data/augment/index.js');
    const tfl = await import('@tensorflow/tfjs-layers');
    // Each replica's backend gets an equal share of the stage's threads; wasm fixes its thread
    // count when it starts, so the main thread's backend is sized here too.
    const workers = p.workers ?? 1;
    const replicaThreads = Math.max(1, Math.floor(ctx.threads / workers));
    const backend = await stageBackend({ threads: replicaThreads, log: ctx.log }, p.backend);
    const tf = backend.tf;
    if (workers > 1) {
      // An error, not a silent workers 1: the key says `workers`, and the result would not be its.
      const problem = workersBackendProblem(workers, backend.name, backend.detail);
      if (problem) throw new InputError(problem);
      ctx.log(
        `data-parallel: ${workers} replicas × ${replicaThreads} backend thread${replicaThreads === 1 ? '' : 's'}`,
      );
    }

    const set = readJson<DecodedSet>(ctx.store, (ctx.inputs.images as InputArtifact).outputs.images!);
    const policy = ctx.inputs.augment
      ? readJson<{ policy: AugmentPolicy }>(ctx.store, (ctx.inputs.augment as InputArtifact).outputs.policy!).policy
      : policyForLevel(1, p.inputSize);
    if (policy.crop !== p.inputSize)
      throw new InputError(`the augment policy crops ${policy.crop} px but inputSize is ${p.inputSize}`);
    // Only the rows are held; each batch reads its images from the cache (readBatch), so memory
    // does not grow with the dataset.
    const trainSet = labelledRows(set, 'train');
    if (!trainSet.blobs.length) throw new InputError('the training split has no labelled images');
    const evalSet = set.splits[p.evalSplit] ? labelledRows(set, p.evalSplit) : undefined;
    const numClasses = set.classes.length;

    const model = await loadModel({
      model: p.model,
      inputSize: p.inputSize,
      numClasses,
      seed: ctx.seed,
      ...(p.cutAt ? { cutAt: p.cutAt } : {}),
      ...(p.headDropout ? { headDropout: p.headDropout } : {}),
      headInit: p.headInit,
      ...(p.batchNormMomentum !== null ? { batchNormMomentum: p.batchNormMomentum } : {}),
    });

    // Resume after the last epoch whose checkpoint and optimizer state are in the index: this
    // run's own, or (raising `epochs`) an earlier run's of the same recipe and rates so far.
    const { learningRateAt } = await import('./tf/train-loop.js');
    const lrs = Array.from({ length: p.epochs }, (_, e) => learningRateAt(e, p.lr, p.lrSteps, p.lrFactor));
    const line = digestOf({
      version: FINETUNE_VERSION,
      // workers 1 written out is the run that leaves it out (undefined is not serialised: the
      // lines of runs made before the param existed stay what they were).
      params: { ...p, epochs: null, lrSteps: null, workers: workers === 1 ? undefined : workers },
      inputs: Object.fromEntries(
        Object.entries(ctx.inputs).map(([n, a]) => [n, digestOf((a as InputArtifact).outputs)]),
      ),
      seed: ctx.seed,
    });
    const saves = new TrainingProgress(ctx.store, ctx.key, line, lrs, ctx.stageId);
    const progress = (epoch: number) => saves.get(epoch);
    let startEpoch = 0;
    let optimizerState;
    for (let e = p.epochs - 1; e >= 0 && ctx.resume; e--) {
      const saved = progress(e);
      const wBlob = saved && ctx.store.getBlob(saved.weights, { optional: true });
      const oBlob = saved && ctx.store.getBlob(saved.opt, { optional: true });
      if (!wBlob || !oBlob) continue;
      // Same topology, so the weights line up by position (tfjs renames layers loaded twice).
      const resumed = await modelFromBlob(tf, tfl, wBlob);
      model.setWeights(resumed.getWeights());
      resumed.dispose();
      optimizerState = decodeOptimizer(oBlob);
      startEpoch = e + 1;
      // A note, not a log line: the user sees without --verbose that these epochs were not trained again.
      ctx.note(
        saved.from
          ? `continuing from epoch ${e + 1} of stage ${saved.from} (the same recipe and learning rates so far), ${p.epochs} epochs in all`
          : `resuming after epoch ${e + 1} of ${p.epochs}`,
      );
      break;
    }

    const checkpoints: Record<string, Digest> = {};
    const history: Array<Record<string, number>> = [];
    for (let e = 0; e < startEpoch; e++) {
      const saved = progress(e);
      if (!saved || !ctx.store.blobInfo(saved.weights))
        throw new Error(`progress of epoch ${e + 1} is missing; rerun with --force`);
      checkpoints[epochName(e)] = saved.weights;
      history.push(saved.row);
    }
    const batches = Math.ceil(trainSet.blobs.length / p.batchSize);
    // Speed of the train loop alone (no evaluation or checkpoint writes), over the epochs run here.
    let [trainedSeconds, trainedImages, trainedEpochs, lastShown] = [0, 0, 0, 0];
    const buffers = [0, 1].map(() => new Float32Array(p.batchSize * p.inputSize * p.inputSize * 3));
    let shuffled = { epoch: -1, order: [] as number[] };

    const trained = await train(model, {
      workers,
      replicaThreads,
      epochs: p.epochs,
      batchSize: p.batchSize,
      lr: p.lr,
      lrSteps: p.lrSteps,
      lrFactor: p.lrFactor,
      momentum: p.momentum,
      weightDecay: p.weightDecay,
      optimizer: p.optimizer,
      labelSmoothing: p.labelSmoothing,
      trainable: p.trainable,
      seed: ctx.seed,
      startEpoch,
      numTrain: trainSet.blobs.length,
      ...(optimizerState ? { optimizerState } : {}),
      batchSource: (epoch, b) => {
        if (epoch !== shuffled.epoch) shuffled = { epoch, order: epochOrder(trainSet.blobs.length, ctx.seed, epoch) };
        const idx = shuffled.order.slice(b * p.batchSize, Math.min((b + 1) * p.batchSize, shuffled.order.length));
        const x = readBatch(
          ctx.store,
          idx.map((i) => trainSet.blobs[i]!),
          (images) => augmentBatch(images, idx, policy, ctx.seed, epoch, buffers[b % 2]),
        );
        return { x, y: Int32Array.from(idx.map((i) => trainSet.labels[i]!)), n: idx.length };
      },
      onBatchEnd: async (epoch, done, total, running) => {
        // Reading the running loss syncs with the backend: only for updates the display will show.
        const now = Date.now();
        if (done < total && now - lastShown < PROGRESS_MS) return;
        lastShown = now;
        const { loss, acc } = await running();
        ctx.progress({
          unit: 'batches',
          done,
          total,
          detail: `epoch ${epoch + 1}/${p.epochs} · loss ${loss.toFixed(3)} · acc ${acc.toFixed(3)}`,
        });
      },
      onEpochEnd: async (epoch, m, trained, context) => {
        const evaluation = evalSet
          ? await evaluate(tf, trained, ctx.store, evalSet, p.inputSize, p.batchSize, centerCrop)
          : {};
        // Timings go to the log only: the history artifact must be byte-identical across runs.
        const row = { epoch: epoch + 1, loss: m.loss, acc: m.acc, lr: m.lr, ...evaluation };
        const weights = await ctx.store.putBlob(await modelToBlob(tf, trained));
        const opt = await ctx.store.putBlob(encodeOptimizer(await context.getOptimizerState()));
        saves.put(epoch, weights, opt, row);
        await ctx.store.flush();
        checkpoints[epochName(epoch)] = weights;
        history.push(row);
        trainedSeconds += m.seconds;
        trainedImages += m.imagesPerSecond * m.seconds;
        trainedEpochs++;
        ctx.note(
          `epoch ${epoch + 1}/${p.epochs}: ${Object.entries(row)
            .slice(1)
            .map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`)
            .join(', ')}; ${batches} batches in ${m.seconds.toFixed(1)} s, ${m.imagesPerSecond.toFixed(1)} img/s`,
        );
      },
    });
    model.dispose();
    if (trained.dataParallel)
      ctx.log(
        `data-parallel: the main thread spent ${trained.dataParallel.exchange.toFixed(1)} s on the exchange (shards, gradients, weights) and ${trained.dataParallel.waiting.toFixed(1)} s waiting for replicas, over ${trainedSeconds.toFixed(1)} s of training`,
      );

    const last = history.at(-1) ?? {};
    return {
      outputs: {
        ...checkpoints,
        history: await ctx.store.putBlob(
          Buffer.from(JSON.stringify({ classes: set.classes, inputSize: p.inputSize, epochs: history }, null, 2)),
        ),
      },
      metrics: last,
      ...(trainedEpochs
        ? { timing: { imagesPerSec: trainedImages / trainedSeconds, secondsPerEpoch: trainedSeconds / trainedEpochs } }
        : {}),
      backend: backend.detail,
    };
  },
});

/** Progress updates at most this often: each reads the running loss back from the backend. */
const PROGRESS_MS = 250;

const epochName = (e: number): string => `epoch-${String(e + 1).padStart(3, '0')}`;

/** A split's labelled images as blob digests and labels: what finetune keeps for the whole run. */
interface LabelledRows {
  blobs: Digest[];
  labels: number[];
}

function labelledRows(set: DecodedSet, split: string): LabelledRows {
  const rows = (set.splits[split] ?? []).filter((r) => r.label !== null);
  return { blobs: rows.map((r) => r.blob), labels: rows.map((r) => r.label!) };
}

/** `fn` over one batch's decoded images, read from the cache without copies: they are valid only inside `fn`. */
function readBatch<T>(store: StageStore, blobs: readonly Digest[], fn: (images: RawImage[]) => T): T {
  return store.withBlobs(blobs, (views) => fn(views.map(decodeDecoded)));
}

/** A permutation of 0…n−1 that depends only on (seed, epoch): Fisher–Yates with a seeded PRNG. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng(hashInts(STREAM.shuffle, seed, epoch));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Top-1, top-3 and log-loss on a split (data/metrics.ts), from centre crops (the eval path of the augmentation module). */
async function evaluate(
  tf: typeof import('@tensorflow/tfjs-core'),
  model: import('@tensorflow/tfjs-layers').LayersModel,
  store: StageStore,
  set: LabelledRows,
  size: number,
  batch: number,
  centerCrop: typeof import('./data/augment/index.js').centerCrop,
): Promise<Record<string, number>> {
  const x = new Float32Array(batch * size * size * 3);
  const total = set.blobs.length;
  let probs = new Float32Array(0);
  for (let start = 0; start < total; start += batch) {
    const n = Math.min(batch, total - start);
    readBatch(store, set.blobs.slice(start, start + n), (images) =>
      images.forEach((img, i) => centerCrop(img, size, x, i * size * size * 3)),
    );
    // data(), not dataSync(): the webgpu backend reads back only asynchronously under Node.
    const out = tf.tidy(
      () =>
        model.predict(
          tf.tensor4d(x.subarray(0, n * size * size * 3), [n, size, size, 3]),
        ) as import('@tensorflow/tfjs-core').Tensor,
    );
    const rows = await out.data();
    out.dispose();
    const k = rows.length / n;
    if (probs.length === 0) probs = new Float32Array(total * k);
    probs.set(rows, start * k);
  }
  const scores = scoreRows(probs, probs.length / total, set.labels);
  return scores ? { valTop1: scores.top1, valTop3: scores.top3, valLoss: scores.logLoss } : {};
}
