/**
 * Model artifacts (Keras/tfjs topology JSON + weight data) from the two places podium reads
 * models: the pretrained models bundled by nsfwjs, and model.json files on disk — which
 * fileSystemHandler also writes (checkpoints). models.ts builds LayersModels from these.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs-core';

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
export async function nsfwjsArtifacts(name: 'mobilenet_v2' | 'inception_v3'): Promise<tf.io.ModelArtifacts> {
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
async function artifactsFromJson(
  json: tf.io.ModelJSON,
  readShard: (path: string) => Promise<ArrayBuffer>,
): Promise<tf.io.ModelArtifacts> {
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
      if (json.modelTopology === undefined)
        throw new Error(`${modelJsonPath}: not a tfjs model.json (no modelTopology)`);
      return artifactsFromJson(json, async (shard) => toArrayBuffer(await readFile(join(dir, shard))));
    },
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer)
        throw new Error('fileSystemHandler saves LayersModels (JSON topology) only');
      await mkdir(dir, { recursive: true });
      const weightsFile = 'weights.bin';
      const data =
        artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.concatenateArrayBuffers(artifacts.weightData);
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
