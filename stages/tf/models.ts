/**
 * Models for fine-tuning: pretrained backbones that work offline, any tfjs LayersModel on disk,
 * and a tiny CNN for tests — each cut at a feature layer and given a fresh classification head.
 *
 * Every model returned by `loadModel` has the same shape of graph:
 *
 *   input [N, S, S, 3] (pixels in [0, 1]) → backbone … cutAt → head_pool (GlobalAveragePooling2D)
 *     → head_dropout (optional) → head_logits (Dense, linear) → head_softmax (Activation softmax)
 *
 * The output is probabilities (rows sum to 1), which is what prediction, multi-crop averaging and
 * fusion consume. The logits are a separate layer so that training (train-loop.ts) can compute a
 * numerically stable log-softmax cross-entropy from `head_logits` instead of log(softmax).
 * Layer names starting with `head_` (HEAD_PREFIX) are the head: `trainable: 'head'` trains those.
 *
 * Input size: the backbones are fully convolutional, so the model is rebuilt from its topology at
 * the requested input size (the InputLayer's batch_input_shape is rewritten) and the pretrained
 * weights are copied by name. Global average pooling replaces nsfwjs's AveragePooling2D(7×7) +
 * Flatten, which only fit 224 px.
 *
 * Weights are assigned by name and every backbone weight must be found with the right shape, so
 * a topology/weights mismatch is an error rather than a silently random layer.
 *
 * Training speed and memory: loadModel also replaces, per layer instance, the training-mode call
 * of Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization and ReLU(max) with lean, faster
 * equivalents (accelerateLayers, below); configs, weights and saved checkpoints are unchanged.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export type LayersModel = tfl.LayersModel;
type Layer = tfl.layers.Layer;

/** Names of the layers loadModel adds; `trainable: 'head'` means the layers with this prefix. */
export const HEAD_PREFIX = 'head_';
export const HEAD_LOGITS = 'head_logits';

export type BuiltinModel = 'mobilenet_v2' | 'inception_v3' | 'tiny';

export interface ModelSpec {
  /** 'mobilenet_v2' | 'inception_v3' (nsfwjs, offline) | 'tiny' | a path or file:// URL of a model.json. */
  model: BuiltinModel | (string & {});
  /** Square input size in pixels, e.g. 128 or 224. */
  inputSize: number;
  numClasses: number;
  /**
   * Layer whose output feeds the new head. Defaults: mobilenet_v2 'out_relu', inception_v3
   * 'mixed10'. For a model.json path: when given, the model is cut there and gets a new head;
   * when omitted, the model is loaded as it is (e.g. a podium checkpoint) and its output must
   * already have `numClasses` units.
   */
  cutAt?: string;
  /** Seeds every weight that is initialised rather than loaded (the head; all of 'tiny'). */
  seed: number;
  /** Dropout rate before the logits; 0 or undefined = no dropout layer. */
  headDropout?: number;
  /**
   * Overrides the momentum of every BatchNormalization layer (Keras semantics: moving =
   * moving·momentum + batch·(1 − momentum); PyTorch's momentum 0.1 is Keras 0.9). nsfwjs's
   * MobileNetV2 uses 0.999, so its moving statistics follow a fine-tuning run only slowly.
   */
  batchNormMomentum?: number;
}

/** Facts of the pretrained models bundled by nsfwjs 4.4.0. */
export const PRETRAINED = {
  mobilenet_v2: {
    cutAt: 'out_relu',
    nativeInputSize: 224,
    /** nsfwjs divides pixels by 255 and subtracts no mean. */
    pixelRange: [0, 1] as const,
  },
  inception_v3: {
    // Last block of Keras InceptionV3; nsfwjs's head follows it (AveragePooling2D 8×8 + Dense).
    cutAt: 'mixed10',
    nativeInputSize: 299,
    // Keras' own InceptionV3 ImageNet weights expect [-1, 1], but nsfwjs feeds this fine-tuned
    // model [0, 1], with the same /255 as for every model (nsfwjs core.js, normalizationOffset).
    pixelRange: [0, 1] as const,
  },
} satisfies Record<string, { cutAt: string; nativeInputSize: number; pixelRange: readonly [number, number] }>;

/** Loads or builds the model described by `spec` (see the file header for the graph). */
export async function loadModel(spec: ModelSpec): Promise<LayersModel> {
  checkSpec(spec);
  let model: LayersModel;
  const name = spec.model;
  if (isPretrained(name)) {
    const artifacts = await nsfwjsArtifacts(name);
    const base = await buildFromArtifacts(artifacts, spec.cutAt ?? PRETRAINED[name].cutAt, spec.inputSize, name);
    model = addHead(base, spec);
  } else if (spec.model === 'tiny') {
    const base = buildTinyBackbone(spec);
    model = addHead(spec.cutAt === undefined ? base : cutModel(base, spec.cutAt), spec);
  } else {
    const artifacts = await fileSystemHandler(spec.model).load();
    if (spec.cutAt !== undefined) {
      model = addHead(await buildFromArtifacts(artifacts, spec.cutAt, spec.inputSize, spec.model), spec);
    } else {
      model = await buildFromArtifacts(artifacts, undefined, spec.inputSize, spec.model);
      const shape = model.outputs[0]?.shape ?? [];
      const units = shape[shape.length - 1];
      if (model.outputs.length !== 1 || units !== spec.numClasses) {
        model.dispose();
        throw new Error(
          `${spec.model}: the model's output has ${String(units)} units, not numClasses ${spec.numClasses}; ` +
            'give cutAt (a feature layer) to replace its head',
        );
      }
    }
  }
  prepareForTraining(model, spec.batchNormMomentum);
  return model;
}

function isPretrained(name: string): name is keyof typeof PRETRAINED {
  return Object.hasOwn(PRETRAINED, name);
}

function checkSpec(spec: ModelSpec): void {
  if (!Number.isInteger(spec.inputSize) || spec.inputSize < 8) throw new Error(`inputSize must be an integer ≥ 8, got ${spec.inputSize}`);
  if (!Number.isInteger(spec.numClasses) || spec.numClasses < 2) throw new Error(`numClasses must be an integer ≥ 2, got ${spec.numClasses}`);
  if (!Number.isInteger(spec.seed)) throw new Error(`seed must be an integer, got ${spec.seed}`);
  const d = spec.headDropout ?? 0;
  if (!(d >= 0 && d < 1)) throw new Error(`headDropout must be in [0, 1), got ${d}`);
  const m = spec.batchNormMomentum;
  if (m !== undefined && !(m >= 0 && m < 1)) throw new Error(`batchNormMomentum must be in [0, 1), got ${m}`);
}

// ---------------------------------------------------------------------------
// nsfwjs's bundled models
// ---------------------------------------------------------------------------

interface NsfwjsDefinition {
  numOfWeightBundles: number;
  modelJson: () => Promise<{ default: tf.io.ModelJSON }>;
  weightBundles: Array<() => Promise<{ default: string }>>;
}

/**
 * nsfwjs ships each model as JavaScript modules (so bundlers can inline them): model.min.js
 * exports the model.json object, group1-shardKofN.min.js the shard's bytes as base64. We load
 * them through nsfwjs's own exported definitions (the package's "exports" map allows nothing
 * else) and decode them the way nsfwjs's JSONHandler does — without importing nsfwjs's main
 * module, which would pull in the whole @tensorflow/tfjs union package.
 */
async function nsfwjsArtifacts(name: 'mobilenet_v2' | 'inception_v3'): Promise<tf.io.ModelArtifacts> {
  const def: NsfwjsDefinition =
    name === 'mobilenet_v2'
      ? (await import('nsfwjs/models/mobilenet_v2')).MobileNetV2Model
      : (await import('nsfwjs/models/inception_v3')).InceptionV3Model;
  const json = (await def.modelJson()).default;
  const shards = new Map<string, ArrayBuffer>();
  for (let i = 0; i < def.numOfWeightBundles; i++) {
    const bundle = def.weightBundles[i];
    if (bundle === undefined) throw new Error(`nsfwjs ${name}: weight bundle ${i + 1} is missing`);
    const bytes = Buffer.from((await bundle()).default, 'base64');
    shards.set(`group1-shard${i + 1}of${def.numOfWeightBundles}`, toArrayBuffer(bytes));
  }
  return artifactsFromJson(json, (path) => {
    const data = shards.get(path);
    if (data === undefined) throw new Error(`nsfwjs ${name}: no bundled weights for shard '${path}'`);
    return Promise.resolve(data);
  });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

/** model.json + a shard reader → ModelArtifacts (weight data as one ArrayBuffer per shard). */
async function artifactsFromJson(json: tf.io.ModelJSON, readShard: (path: string) => Promise<ArrayBuffer>): Promise<tf.io.ModelArtifacts> {
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const weightData: ArrayBuffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    weightSpecs.push(...group.weights);
    for (const path of group.paths) weightData.push(await readShard(path));
  }
  const artifacts: tf.io.ModelArtifacts = { modelTopology: json.modelTopology, weightSpecs, weightData };
  if (json.format !== undefined) artifacts.format = json.format;
  if (json.generatedBy !== undefined) artifacts.generatedBy = json.generatedBy;
  if (json.convertedBy !== undefined && json.convertedBy !== null) artifacts.convertedBy = json.convertedBy;
  if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  return artifacts;
}

// ---------------------------------------------------------------------------
// Files: a small IOHandler over node:fs
// ---------------------------------------------------------------------------

/** An IOHandler whose load and save both exist (tf.io.IOHandler has them optional). */
export interface FileSystemHandler extends tf.io.IOHandler {
  load(): Promise<tf.io.ModelArtifacts>;
  save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult>;
}

/**
 * Reads and writes a tfjs LayersModel as `model.json` + `weights.bin` with node:fs (tfjs-node's
 * file:// handler is not available without tfjs-node). `path` is a model.json path, a directory
 * (meaning `<dir>/model.json`), or a file:// URL of either. Loading follows the model.json's
 * weightsManifest, so models written by tfjs, tfjs-node or the tfjs converter (several shards)
 * load too.
 */
export function fileSystemHandler(path: string): FileSystemHandler {
  const local = path.startsWith('file://') ? fileURLToPath(path) : path;
  const modelJsonPath = resolve(local.endsWith('.json') ? local : join(local, 'model.json'));
  const dir = dirname(modelJsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new Error(`cannot read model ${modelJsonPath}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (json.modelTopology === undefined) throw new Error(`${modelJsonPath}: not a tfjs model.json (no modelTopology)`);
      return artifactsFromJson(json, async (shard) => toArrayBuffer(await readFile(join(dir, shard))));
    },
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('fileSystemHandler saves LayersModels (JSON topology) only');
      await mkdir(dir, { recursive: true });
      const weightsFile = 'weights.bin';
      const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.concatenateArrayBuffers(artifacts.weightData);
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.format !== undefined) json.format = artifacts.format;
      if (artifacts.generatedBy !== undefined) json.generatedBy = artifacts.generatedBy;
      if (artifacts.convertedBy !== undefined) json.convertedBy = artifacts.convertedBy;
      if (artifacts.trainingConfig !== undefined) json.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata !== undefined) json.userDefinedMetadata = artifacts.userDefinedMetadata;
      await writeFile(join(dir, weightsFile), new Uint8Array(data));
      await writeFile(modelJsonPath, JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

// ---------------------------------------------------------------------------
// Topology surgery: cut at a layer and set the input size, on the Keras JSON
// ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

interface LayerJson {
  class_name: string;
  name?: string;
  config: Json;
  inbound_nodes?: unknown;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function layerName(l: LayerJson): string {
  const n = l.name ?? l.config['name'];
  if (typeof n !== 'string') throw new Error(`a ${l.class_name} layer in the topology has no name`);
  return n;
}

/** Names of the layers feeding `layer`, from Keras 2 inbound_nodes [[[name, node, tensor, kwargs], …], …]. */
function inboundNames(layer: LayerJson, source: string): string[] {
  const nodes = layer.inbound_nodes ?? [];
  if (!Array.isArray(nodes)) throw new Error(`${source}: layer '${layerName(layer)}' has malformed inbound_nodes`);
  const names: string[] = [];
  for (const node of nodes) {
    if (!Array.isArray(node)) throw new Error(`${source}: layer '${layerName(layer)}' uses an inbound_nodes format tfjs-layers cannot read`);
    for (const entry of node) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') {
        throw new Error(`${source}: layer '${layerName(layer)}' uses an inbound_nodes format tfjs-layers cannot read`);
      }
      names.push(entry[0]);
    }
  }
  return names;
}

/**
 * Returns a copy of a Keras/tfjs topology cut at `cutAt` (only it and its ancestors are kept; it
 * becomes the output) and with every rank-4 input set to [null, size, size, channels].
 * Handles functional models ('Model' / 'Functional') and 'Sequential', in both the tfjs-layers
 * save format ({class_name, config}) and the Keras-converter one ({model_config: {…}}).
 */
function rewriteTopology(topology: Json, cutAt: string | undefined, inputSize: number, source: string): Json {
  const copy = structuredClone(topology);
  const modelConfig = isObject(copy['model_config']) ? copy['model_config'] : copy;
  const className = modelConfig['class_name'];
  const rawConfig = modelConfig['config'];
  if (className === 'Sequential') {
    // Old Keras saved a Sequential's config as the bare layer list.
    const holder: Json = Array.isArray(rawConfig) ? { layers: rawConfig } : isObject(rawConfig) ? rawConfig : {};
    if (Array.isArray(rawConfig)) modelConfig['config'] = holder;
    const layers = holder['layers'];
    if (!Array.isArray(layers) || layers.length === 0) throw new Error(`${source}: Sequential model without layers`);
    const typed = layers as LayerJson[];
    if (cutAt !== undefined) {
      const at = typed.findIndex((l) => layerName(l) === cutAt);
      if (at < 0) throw new Error(`${source}: no layer named '${cutAt}' (cutAt); layers: ${typed.map(layerName).join(', ')}`);
      holder['layers'] = typed.slice(0, at + 1);
    }
    const first = typed[0];
    if (first !== undefined) resizeInput(first.config, inputSize, source);
    return copy;
  }
  if (className !== 'Model' && className !== 'Functional') throw new Error(`${source}: unsupported model class '${String(className)}'`);
  if (!isObject(rawConfig) || !Array.isArray(rawConfig['layers'])) throw new Error(`${source}: functional model without layers`);
  let layers = rawConfig['layers'] as LayerJson[];
  if (cutAt !== undefined) {
    const byName = new Map(layers.map((l) => [layerName(l), l]));
    if (!byName.has(cutAt)) throw new Error(`${source}: no layer named '${cutAt}' (cutAt); the last layers are ${layers.slice(-8).map(layerName).join(', ')}`);
    const keep = new Set<string>();
    const stack = [cutAt];
    while (stack.length > 0) {
      const name = stack.pop() as string;
      if (keep.has(name)) continue;
      keep.add(name);
      const l = byName.get(name);
      if (l === undefined) throw new Error(`${source}: layer '${name}' is referenced but not defined`);
      stack.push(...inboundNames(l, source));
    }
    layers = layers.filter((l) => keep.has(layerName(l)));
    rawConfig['layers'] = layers;
    rawConfig['output_layers'] = [[cutAt, 0, 0]];
    const inputs = rawConfig['input_layers'];
    if (Array.isArray(inputs)) rawConfig['input_layers'] = inputs.filter((e) => Array.isArray(e) && keep.has(String(e[0])));
  }
  let resized = 0;
  for (const l of layers) if (l.class_name === 'InputLayer' && resizeInput(l.config, inputSize, source)) resized++;
  if (resized === 0) throw new Error(`${source}: no image InputLayer (rank 4) to set the input size on`);
  return copy;
}

/** Sets a layer config's batch input shape to [null, size, size, C]; false if it has none of rank 4. */
function resizeInput(config: Json, size: number, source: string): boolean {
  for (const key of ['batch_input_shape', 'batch_shape', 'batchInputShape']) {
    const shape = config[key];
    if (!Array.isArray(shape)) continue;
    if (shape.length !== 4) return false;
    const channels = shape[3];
    if (typeof channels !== 'number') throw new Error(`${source}: input has an unknown channel count`);
    config[key] = [null, size, size, channels];
    return true;
  }
  return false;
}

/**
 * Builds the (cut, resized) model and assigns its weights by name. Every weight of the built
 * model must come from the artifacts with the same shape; weights of cut-off layers are ignored.
 */
async function buildFromArtifacts(artifacts: tf.io.ModelArtifacts, cutAt: string | undefined, inputSize: number, source: string): Promise<LayersModel> {
  const topology = artifacts.modelTopology;
  if (!isObject(topology)) throw new Error(`${source}: the topology is not a LayersModel JSON (a GraphModel cannot be fine-tuned)`);
  const model = await tfl.models.modelFromJSON({
    modelTopology: rewriteTopology(topology, cutAt, inputSize, source) as Parameters<typeof tfl.models.modelFromJSON>[0]['modelTopology'],
  });
  if (artifacts.weightSpecs === undefined || artifacts.weightData === undefined) {
    model.dispose();
    throw new Error(`${source}: the model has no weights`);
  }
  // decodeWeights dequantizes (nsfwjs ships uint8-quantized weights) into float32 tensors.
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    for (const w of model.weights) {
      const value = named[w.originalName];
      if (value === undefined) throw new Error(`${source}: no weights for '${w.originalName}'`);
      if (!tf.util.arraysEqual(value.shape, w.shape as number[])) {
        throw new Error(`${source}: weight '${w.originalName}' has shape [${value.shape.join(',')}], the model needs [${w.shape.join(',')}]`);
      }
      w.write(value);
    }
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    // write() shares the decoded tensor's data (refcounted), so disposing here frees only the
    // weights nothing took: those of the cut-off layers.
    tf.dispose(Object.values(named));
  }
  if (isObject(artifacts.userDefinedMetadata)) model.setUserDefinedMetadata(artifacts.userDefinedMetadata);
  return model;
}

/**
 * The sub-model from the inputs to layer `cutAt`, sharing layers and weights with `model`; the
 * layers left out are disposed (nothing else references them).
 */
function cutModel(model: LayersModel, cutAt: string): LayersModel {
  const layer = model.layers.find((l) => l.name === cutAt);
  if (layer === undefined) throw new Error(`no layer named '${cutAt}' (cutAt); layers: ${model.layers.map((l) => l.name).join(', ')}`);
  const cut = tfl.model({ inputs: model.inputs, outputs: layer.output as tfl.SymbolicTensor, name: model.name });
  const kept = new Set(cut.layers);
  for (const l of model.layers) if (!kept.has(l)) l.dispose();
  return cut;
}

// ---------------------------------------------------------------------------
// The head
// ---------------------------------------------------------------------------

/**
 * base → GlobalAveragePooling2D → [Dropout] → Dense(numClasses) logits → softmax.
 * Dense init: Keras' default Glorot-uniform kernel and zero bias, seeded by `spec.seed`.
 */
function addHead(base: LayersModel, spec: ModelSpec): LayersModel {
  const features = base.outputs[0];
  if (base.outputs.length !== 1 || features === undefined) throw new Error('the cut model must have exactly one output');
  for (const l of base.layers) {
    if (l.name.startsWith(HEAD_PREFIX)) throw new Error(`layer '${l.name}' clashes with podium's head layer names (prefix '${HEAD_PREFIX}')`);
  }
  let x: tfl.SymbolicTensor = features;
  if (x.shape.length === 4) {
    x = tfl.layers.globalAveragePooling2d({ name: `${HEAD_PREFIX}pool` }).apply(x) as tfl.SymbolicTensor;
  } else if (x.shape.length !== 2) {
    throw new Error(`the feature layer's output has shape [${x.shape.join(',')}]; expected [N, H, W, C] or [N, C]`);
  }
  const rate = spec.headDropout ?? 0;
  // The seed here is a placeholder: train-loop.ts sets a fresh seed per step (see there).
  if (rate > 0) x = tfl.layers.dropout({ rate, seed: spec.seed, name: `${HEAD_PREFIX}dropout` }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .dense({
      units: spec.numClasses,
      name: HEAD_LOGITS,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: spec.seed }),
      biasInitializer: 'zeros',
    })
    .apply(x) as tfl.SymbolicTensor;
  const probs = tfl.layers.activation({ activation: 'softmax', name: `${HEAD_PREFIX}softmax` }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: base.inputs, outputs: probs, name: base.name });
}

// ---------------------------------------------------------------------------
// The tiny CNN (tests)
// ---------------------------------------------------------------------------

/**
 * A MobileNetV2-flavoured toy backbone: strided conv → depthwise → pointwise, each with BN and
 * ReLU6, ending in 'out_relu' as MobileNetV2 does (loadModel adds the head). Every initializer
 * gets its own seed derived from `spec.seed`, so the same seed gives bit-identical weights.
 */
function buildTinyBackbone(spec: ModelSpec): LayersModel {
  let k = 0;
  const seeded = (): ReturnType<typeof tfl.initializers.heNormal> => tfl.initializers.heNormal({ seed: spec.seed * 7919 + ++k });
  const bn = (name: string): Layer => tfl.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-3 });
  const relu6 = (name: string): Layer => tfl.layers.reLU({ maxValue: 6, name });
  const input = tfl.input({ shape: [spec.inputSize, spec.inputSize, 3], name: 'input_1' });
  let x = tfl.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: seeded(), name: 'conv1' })
    .apply(input) as tfl.SymbolicTensor;
  x = relu6('conv1_relu').apply(bn('conv1_bn').apply(x)) as tfl.SymbolicTensor;
  x = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: seeded(), name: 'dw' })
    .apply(x) as tfl.SymbolicTensor;
  x = relu6('dw_relu').apply(bn('dw_bn').apply(x)) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: 16, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: seeded(), name: 'pw' })
    .apply(x) as tfl.SymbolicTensor;
  x = relu6('out_relu').apply(bn('pw_bn').apply(x)) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x, name: 'tiny' });
}

// ---------------------------------------------------------------------------
// Making a loaded model trainable
// ---------------------------------------------------------------------------

interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

interface BatchNormInternals {
  axis: number;
  scale: boolean;
  center: boolean;
  momentum: number;
  epsilon: number;
  gamma?: { read(): tf.Tensor } | null;
  beta?: { read(): tf.Tensor } | null;
  movingMean?: LayerVariableLike & { shape: number[] };
  movingVariance?: LayerVariableLike;
  dispose(): { refCountAfterDispose: number; numDisposedVariables: number };
}

type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** Marks layers whose call accelerateLayers replaced, so doing it twice is harmless. */
const ACCELERATED = Symbol.for('podium.acceleratedLayer');

/**
 * - Every layer becomes trainable: nsfwjs's topology marks 98 backbone layers trainable: false
 *   (its own recipe). What trains is decided per run by train-loop.ts's `trainable` option.
 * - Optionally overrides BN momentum (ModelSpec.batchNormMomentum).
 * - Installs the fast, lean layer implementations (accelerateLayers).
 */
function prepareForTraining(model: LayersModel, batchNormMomentum: number | undefined): void {
  for (const layer of model.layers) {
    layer.trainable = true;
    if (batchNormMomentum !== undefined && layer.getClassName() === 'BatchNormalization') {
      (layer as unknown as BatchNormInternals).momentum = batchNormMomentum;
    }
  }
  accelerateLayers(model);
}

/**
 * BatchNormalization with scale: false or center: false (all of InceptionV3's BN layers have
 * scale: false) crashes in tfjs-layers 4.22 in training mode: its call reads `this.gamma.read()`
 * unconditionally. We give such layers a constant γ = 1 (β = 0) that is not a weight — exactly
 * what the missing parameter means — so the config, the weight list and checkpoints stay
 * Keras-compatible. The constants are freed with the layer.
 */
function addMissingBatchNormConstants(bn: BatchNormInternals, layer: Layer): void {
  const shape = bn.movingMean?.shape;
  if (shape === undefined) return;
  const constants: tf.Tensor[] = [];
  if (!bn.scale && bn.gamma == null) {
    const ones = tf.ones(shape);
    constants.push(ones);
    bn.gamma = { read: () => ones };
  }
  if (!bn.center && bn.beta == null) {
    const zeros = tf.zeros(shape);
    constants.push(zeros);
    bn.beta = { read: () => zeros };
  }
  if (constants.length === 0) return;
  const dispose = bn.dispose.bind(layer);
  bn.dispose = () => {
    const result = dispose();
    if (result.refCountAfterDispose === 0) tf.dispose(constants);
    return result;
  };
}

// ---------------------------------------------------------------------------
// Lean, fast layers for training on the wasm backend
// ---------------------------------------------------------------------------
//
// Why: a first profile of one MobileNetV2 training step (batch 8, 128 px, wasm) spent 2.3 s of
// 6.2 s in Tile and ~1 s more in Sum/Mean/Multiply, nearly all from tfjs-layers'
// BatchNormalization in training mode (tf.moments reduces over N·H·W by transposing, the
// FusedBatchNorm gradient tiles per-channel factors to the activation's full shape, the Mean/Sum
// gradients multiply by full-size ones), and the tensors peaked at 1.6 GB: batch 32 ran the wasm
// heap (4 GB at most) out of memory.
//
// Memory: tfjs's backward pass (tape.ts backpropagateGradients) keeps every gradient it computes
// and every tensor saved for the backward pass until the very end, and a gradient function's
// intermediates live as long (customGrad gradFuncs run outside any per-node tidy). So the peak
// is about "all saved activations + one gradient per op output + intermediates".
//
// What replaces them, per layer instance (config, weights and checkpoints are unchanged):
// - Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization and ReLU(max) run in training
//   mode as single tf.customGrad ops ("lean ops"). Their gradient runs in a tidy and then
//   disposes its incoming gradient and its saved tensors: each is used by exactly this one node,
//   and the engine's own later dispose of them is a no-op. Memory then falls as the backward
//   pass proceeds instead of rising. They save only what their gradient needs (a conv: x and
//   the kernel; BN: x and per-channel vectors; ReLU: its output).
//   The conv gradients call the very kernels tfjs's own conv gradients call (Conv2DBackpropInput,
//   Conv2DBackpropFilter, DepthwiseConv2dNative* — on wasm, those of wasm-gradients.ts).
// - BN per-channel means over N·H·W are a global average pooling (XNNPACK, one pass) and a mean
//   over N: tf.moments and Sum over non-innermost axes transpose first (~10× slower), and a GEMM
//   with a row of ones is slower still (XNNPACK packs the activation as a weight matrix).
// - BN's per-channel affine map a·x + b is one 1×1 depthwise convolution with bias (one XNNPACK
//   pass) on wasm; broadcasting mul/add elsewhere. The training-mode gradient is closed-form:
//     dβ = Σdy,  dγ = Σ dy·x̂,  dx = a·dy − (a/M)·dβ − (a/M)·x̂·dγ    (a = γ/√(σ²+ε), M = N·H·W)
//   computed as dx = a·dy + k·x + c. Moving statistics are updated as tfjs-layers does
//   (moving −= (moving − batch)·(1 − momentum)), except that the variance fed to the moving
//   average is the unbiased one (× M/(M−1)), as TensorFlow's fused batch norm and PyTorch do;
//   normalisation uses the biased one, as all of them do.
// - ReLU(maxValue) is one clip whose gradient is dy·step(y·(max − y)): 2 passes instead of 7.
// Inference mode: BN becomes the same single affine pass (from the moving statistics), ReLU the
// single clip; convolutions and padding keep tfjs-layers' own call.
// Everything is deterministic; results differ from the stock layers by float rounding only
// (checked in test/tf/backend-models.test.ts).

type Save = (tensors: tf.Tensor[]) => void;

/**
 * A differentiable op whose gradient frees memory as it goes (see above): `backward` runs in a
 * tidy, then the incoming gradient and the saved tensors are disposed.
 */
function leanOp(
  inputs: tf.Tensor[],
  forward: (inputs: tf.Tensor[], save: Save) => tf.Tensor,
  backward: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[],
): tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | Save>) => {
    const save = args[args.length - 1] as Save;
    const value = forward(args.slice(0, -1) as tf.Tensor[], save);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads = tf.tidy(() => backward(dy, saved));
        tf.dispose([dy, ...saved]);
        return grads;
      },
    };
  });
  return op(...inputs);
}

interface ConvInternals {
  kernel?: LayerVariableLike | null;
  depthwiseKernel?: LayerVariableLike | null;
  bias?: LayerVariableLike | null;
  strides: number[];
  padding: string;
  dilationRate: number[] | number;
  dataFormat: string;
  useBias: boolean;
}

/**
 * Replaces the call of the model's Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization
 * (channels-last) and ReLU(maxValue) layers by the lean, fast implementations above (and gives
 * BN layers without γ or β constants for them); layers with other settings keep their own call.
 * Idempotent; loadModel does it, and train() does it again for models built elsewhere.
 *
 * Caveat of the lean ops: their gradient disposes the gradient it receives. tfjs's own backward
 * pass never reuses it, but a caller of tf.grads(f)(x, dy) whose f ends in one of these layers
 * would see its own `dy` disposed; pass a clone.
 */
export function accelerateLayers(model: LayersModel): void {
  for (const layer of model.layers) {
    const target = layer as unknown as { call: CallFn; [ACCELERATED]?: boolean };
    if (target[ACCELERATED] === true) continue;
    const original: CallFn = target.call.bind(layer);
    const replacement = fastCall(layer, original);
    if (replacement === undefined) continue;
    target.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
      return x === undefined ? original(inputs, kwargs) : replacement(x, kwargs['training'] === true);
    };
    target[ACCELERATED] = true;
  }
}

/** The fast call for one layer, or undefined when its settings are not supported. */
function fastCall(layer: Layer, original: CallFn): ((x: tf.Tensor, training: boolean) => tf.Tensor | tf.Tensor[]) | undefined {
  const config = layer.getConfig() as { activation?: unknown; dataFormat?: unknown; data_format?: unknown };
  const channelsLast = (config.dataFormat ?? config.data_format ?? 'channelsLast') !== 'channelsFirst';
  switch (layer.getClassName()) {
    case 'BatchNormalization': {
      const bn = layer as unknown as BatchNormInternals;
      addMissingBatchNormConstants(bn, layer);
      return (x, training) => {
        const axis = bn.axis < 0 ? bn.axis + x.rank : bn.axis;
        const { gamma, beta, movingMean, movingVariance } = bn;
        if (axis !== x.rank - 1 || gamma == null || beta == null || movingMean === undefined || movingVariance === undefined) {
          return original(x, { training });
        }
        if (training) return batchNormTraining(bn, x, gamma.read(), beta.read());
        return tf.tidy(() => {
          const a = tf.mul(gamma.read(), tf.rsqrt(tf.add(movingVariance.read(), bn.epsilon))) as tf.Tensor1D;
          const b = tf.sub(beta.read(), tf.mul(movingMean.read(), a)) as tf.Tensor1D;
          return affinePerChannel(x, a, b);
        });
      };
    }
    case 'ReLU': {
      const maxValue = (layer as unknown as { maxValue?: number | null }).maxValue;
      if (maxValue === undefined || maxValue === null || !(maxValue > 0)) return undefined;
      return (x, training) => (training ? clippedRelu(x, maxValue) : tf.clipByValue(x, 0, maxValue));
    }
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const conv = layer as unknown as ConvInternals;
      const dilations = Array.isArray(conv.dilationRate) ? conv.dilationRate : [conv.dilationRate, conv.dilationRate];
      const supported =
        channelsLast && config.activation === 'linear' && dilations.every((d) => d === 1) && (conv.padding === 'same' || conv.padding === 'valid');
      if (!supported) return undefined;
      const depthwise = layer.getClassName() === 'DepthwiseConv2D';
      return (x, training) => {
        const kernel = depthwise ? conv.depthwiseKernel : conv.kernel;
        if (!training || x.rank !== 4 || kernel == null) return original(x, { training });
        const bias = conv.useBias && conv.bias != null ? conv.bias.read() : null;
        return convTraining(x as tf.Tensor4D, kernel.read() as tf.Tensor4D, bias, conv, depthwise);
      };
    }
    case 'ZeroPadding2D': {
      const padding = (layer as unknown as { padding: [[number, number], [number, number]] }).padding;
      if (!channelsLast) return undefined;
      return (x, training) => {
        if (!training || x.rank !== 4) return original(x, { training });
        return zeroPadTraining(x as tf.Tensor4D, padding);
      };
    }
    default:
      return undefined;
  }
}

function convTraining(x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor | null, conv: ConvInternals, depthwise: boolean): tf.Tensor {
  const strides: [number, number] = [conv.strides[0] ?? 1, conv.strides[1] ?? 1];
  const pad = conv.padding as 'same' | 'valid';
  const inputs = bias === null ? [x, kernel] : [x, kernel, bias];
  return leanOp(
    inputs,
    ([input, filter, b], save) => {
      const x4 = input as tf.Tensor4D;
      const f4 = filter as tf.Tensor4D;
      save([x4, f4]);
      return tf.tidy(() => {
        const y = depthwise ? tf.depthwiseConv2d(x4, f4, strides, pad) : tf.conv2d(x4, f4, strides, pad);
        return b === undefined ? y : tf.add(y, b);
      });
    },
    (dy, [sx, sf]) => {
      const x4 = sx as tf.Tensor4D;
      const f4 = sf as tf.Tensor4D;
      const engine = tf.engine();
      let dx: tf.Tensor;
      let df: tf.Tensor;
      if (depthwise) {
        const attrs = { strides, pad, dilations: [1, 1] };
        dx = engine.runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f4 }, { ...attrs, inputShape: x4.shape }) as tf.Tensor;
        df = engine.runKernel('DepthwiseConv2dNativeBackpropFilter', { x: x4, dy }, { ...attrs, filterShape: f4.shape }) as tf.Tensor;
      } else {
        const attrs = { strides, pad, dataFormat: 'NHWC' };
        dx = engine.runKernel('Conv2DBackpropInput', { dy, filter: f4 }, { ...attrs, inputShape: x4.shape }) as tf.Tensor;
        df = engine.runKernel('Conv2DBackpropFilter', { x: x4, dy }, { ...attrs, filterShape: f4.shape }) as tf.Tensor;
      }
      if (bias === null) return [dx, df];
      const m = dy.size / (dy.shape[3] as number);
      return [dx, df, tf.mul(meanPerChannel(dy), m)];
    },
  );
}

function zeroPadTraining(x: tf.Tensor4D, padding: [[number, number], [number, number]]): tf.Tensor {
  const [[top, bottom], [left, right]] = padding;
  const shape = x.shape;
  return leanOp(
    [x],
    ([input]) => tf.pad(input as tf.Tensor4D, [[0, 0], [top, bottom], [left, right], [0, 0]]),
    (dy) => [tf.slice(dy, [0, top, left, 0], shape)],
  );
}

/**
 * a·x + b per channel (last axis); a and b have shape [C]. On wasm, b must also have been
 * *computed* as a [C] tensor, not reshaped to it: the wasm FusedDepthwiseConv2D checks the rank
 * of the bias's underlying buffer, which keeps the shape it was created with.
 */
function affinePerChannel(x: tf.Tensor, a: tf.Tensor1D, b: tf.Tensor1D | null): tf.Tensor {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    if (tf.getBackend() !== 'wasm') {
      const scaled = tf.mul(x, a);
      return b === null ? scaled : tf.add(scaled, b);
    }
    const x4 = (x.rank === 4 ? x : tf.reshape(x, [1, 1, x.size / c, c])) as tf.Tensor4D;
    const filter = tf.reshape(a, [1, 1, c, 1]) as tf.Tensor4D;
    const y = b === null ? tf.depthwiseConv2d(x4, filter, 1, 'valid') : tf.fused.depthwiseConv2d({ x: x4, filter, strides: 1, pad: 'valid', bias: b });
    return x.rank === 4 ? y : tf.reshape(y, x.shape);
  });
}

/**
 * Mean over all axes but the last, as [C]. For [N, H, W, C] on wasm: a global average pooling
 * and a mean over the N rows left (see above).
 */
function meanPerChannel(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    if (x.rank === 4 && tf.getBackend() === 'wasm') {
      const [n, h, w] = x.shape as [number, number, number, number];
      return tf.mean(tf.reshape(tf.avgPool(x as tf.Tensor4D, [h, w], 1, 'valid'), [n, c]), 0) as tf.Tensor1D;
    }
    return tf.mean(tf.reshape(x, [x.size / c, c]), 0) as tf.Tensor1D;
  });
}

function batchNormTraining(bn: BatchNormInternals, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const c = x.shape[x.rank - 1] as number;
  const m = x.size / c;
  return leanOp(
    [x, tf.reshape(gamma, [c]), tf.reshape(beta, [c])],
    ([input, g, b], save) => {
      const x0 = input as tf.Tensor;
      const mean = meanPerChannel(x0);
      // Two-pass variance (exact even when |mean| ≫ std, unlike E[x²] − E[x]²).
      const variance = meanPerChannel(tf.squaredDifference(x0, mean));
      const inv = tf.rsqrt(tf.add(variance, bn.epsilon)) as tf.Tensor1D;
      const a = tf.mul(g as tf.Tensor1D, inv) as tf.Tensor1D;
      const shift = tf.sub(b as tf.Tensor1D, tf.mul(mean, a)) as tf.Tensor1D;
      updateMovingAverage(bn.movingMean as LayerVariableLike, mean, bn.momentum);
      updateMovingAverage(bn.movingVariance as LayerVariableLike, m > 1 ? tf.mul(variance, m / (m - 1)) : variance, bn.momentum);
      save([x0, mean, inv, a]);
      return affinePerChannel(x0, a, shift);
    },
    (dy, [sx, sMean, sInv, sA]) => {
      const x0 = sx as tf.Tensor;
      const mean = sMean as tf.Tensor1D;
      const inv = sInv as tf.Tensor1D;
      const a = sA as tf.Tensor1D;
      const meanDy = meanPerChannel(dy); // dβ / M
      const cov = tf.sub(meanPerChannel(tf.mul(dy, x0)), tf.mul(mean, meanDy)); // E[dy·(x − mean)]
      // dγ = Σ dy·x̂ = M·inv·cov;  dx = a·dy + k·x + c with k = −a·inv²·cov, c = −a·E[dy] − k·mean.
      const k = tf.neg(tf.mul(tf.mul(a, tf.square(inv)), cov)) as tf.Tensor1D;
      const cst = tf.sub(tf.neg(tf.mul(a, meanDy)), tf.mul(k, mean)) as tf.Tensor1D;
      const dx = tf.add(affinePerChannel(dy, a, null), affinePerChannel(x0, k, cst));
      return [dx, tf.mul(tf.mul(inv, cov), m), tf.mul(meanDy, m)];
    },
  );
}

function updateMovingAverage(variable: LayerVariableLike, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const current = variable.read();
    variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - momentum)));
  });
}

function clippedRelu(x: tf.Tensor, maxValue: number): tf.Tensor {
  return leanOp(
    [x],
    ([input], save) => {
      const y = tf.clipByValue(input as tf.Tensor, 0, maxValue);
      save([y]);
      return y;
    },
    // 0 < y < max ⇔ y·(max − y) > 0: the gradient passes exactly there (as TF's Relu6Grad).
    (dy, [y]) => [tf.mul(dy, tf.step(tf.mul(y as tf.Tensor, tf.sub(maxValue, y as tf.Tensor))))],
  );
}
