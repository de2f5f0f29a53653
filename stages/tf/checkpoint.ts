// A trained model as one cache blob: a small JSON header (topology and weight specs) followed by
// the raw weight bytes, so a checkpoint is content-addressed like every other artifact and two
// bit-identical trainings give byte-identical checkpoints.
import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type Tf = typeof import('@tensorflow/tfjs-core');

const MAGIC = 'PODIUM-TFJS1\n';

export async function modelToBlob(tf: Tf, model: tfl.LayersModel): Promise<Buffer> {
  let artifacts: tfc.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('model has no weights to save');
  const weights = Buffer.from(artifacts.weightData as ArrayBuffer);
  const header = Buffer.from(
    JSON.stringify({ modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([Buffer.from(MAGIC), len, header, weights]);
}

export async function modelFromBlob(tf: Tf, tfLayers: typeof tfl, blob: Uint8Array): Promise<tfl.LayersModel> {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.subarray(0, MAGIC.length).toString() !== MAGIC) throw new Error('not a podium model checkpoint');
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const { modelTopology, weightSpecs } = JSON.parse(
    buf.subarray(start, start + len).toString(),
  ) as tfc.io.ModelArtifacts;
  const weights = buf.subarray(start + len);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return tfLayers.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData }));
}
