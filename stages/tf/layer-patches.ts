/**
 * Temporary patches the training loop (train-loop.ts) puts on layers for the length of a run or a
 * step, each undone exactly, so a model leaves training with the topology it came with.
 *
 * - Frozen BatchNormalization: layers that are not trained (`trainable: 'head'` or `{from}`) run
 *   their BatchNormalization in inference mode (moving statistics neither used from the batch nor
 *   updated), as Keras ≥ 2.1.3 does for non-trainable BN. Otherwise a "frozen" backbone would
 *   still drift.
 * - Dropout seeds: tfjs's Dropout layer draws from Math.random unless it has a seed, and with a
 *   fixed seed it draws the same mask every step. Each Dropout layer's seed is set per step from
 *   (seed, epoch, batch, layer), so masks differ per step yet a rerun — or a resumed run — draws
 *   exactly the same ones; the layers' own seeds are put back after every step, so saved
 *   topologies do not change. With data-parallel replicas (data-parallel.ts) each shard of a
 *   step draws its own masks: the shard index joins the hash (shard 0 keeps the one-replica
 *   seeds, so `workers: 1` draws exactly what it always did).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { hashInts, STREAM } from '../data/random.js';

type Layer = tfl.layers.Layer;

interface CallableLayer {
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** Runs the given layers' BatchNormalization in inference mode until the returned undo is called. */
export function freezeBatchNorm(frozen: readonly Layer[]): () => void {
  const undo: Array<() => void> = [];
  for (const layer of frozen) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const target = layer as unknown as CallableLayer;
    // The layer may already have an own call (models.ts's accelerateLayers); put back exactly
    // what was there.
    const hadOwn = Object.prototype.hasOwnProperty.call(layer, 'call');
    const original = target.call;
    target.call = (inputs, kwargs) => original.call(layer, inputs, { ...kwargs, training: false });
    undo.push(() => {
      if (hadOwn) target.call = original;
      else delete (layer as unknown as Partial<CallableLayer>).call;
    });
  }
  return () => undo.forEach((f) => f());
}

export function seedDropouts(
  layers: readonly Layer[],
  seed: number,
  epoch: number,
  batch: number,
  shard = 0,
): { restore(): void } {
  const targets = layers as unknown as Array<{ seed?: number }>;
  const saved = targets.map((l) => l.seed);
  targets.forEach((l, i) => {
    l.seed =
      shard === 0
        ? hashInts(STREAM.dropout, seed, epoch, batch, i)
        : hashInts(STREAM.dropout, seed, epoch, batch, i, shard);
  });
  return {
    restore: () =>
      targets.forEach((l, i) => {
        l.seed = saved[i];
      }),
  };
}
