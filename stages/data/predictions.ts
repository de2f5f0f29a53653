// Class-probability matrices, as produced by multicrop-predict and fuse and consumed by fuse and
// export: per split the image ids (fixed order), labels (null when unlabelled) and an n × k
// float32 matrix. Stored as one blob: a JSON header, then each split's matrix in header order.
export interface SplitPredictions {
  ids: string[];
  labels: Array<number | null>;
  /** Row-major n × classes.length probabilities. */
  probs: Float32Array;
}

export interface Predictions {
  classes: string[];
  splits: Record<string, SplitPredictions>;
}

import { InputError } from '../contract.js';

/** Outputs whose name starts with this hold a Predictions blob (a stage may have several). */
export const PREDICTIONS_PREFIX = 'predictions';
/**
 * Outputs whose name starts with this hold a Predictions blob that is one fusion candidate among
 * many (multicrop-predict: one per (checkpoint, crops, scale)); fuse takes them when asked to.
 */
export const CANDIDATE_PREFIX = 'candidate';

export function encodePredictions(p: Predictions): Buffer {
  const names = Object.keys(p.splits);
  const header = Buffer.from(
    JSON.stringify({
      classes: p.classes,
      splits: names.map((s) => ({ name: s, ids: p.splits[s]!.ids, labels: p.splits[s]!.labels })),
    }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const mats = names.map((s) => {
    const m = p.splits[s]!.probs;
    if (m.length !== p.splits[s]!.ids.length * p.classes.length)
      throw new Error(`predictions for ${s}: ${m.length} values for ${p.splits[s]!.ids.length} × ${p.classes.length}`);
    return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  });
  return Buffer.concat([len, header, ...mats]);
}

/**
 * The predictions in a blob. Bytes that are not a predictions blob (a command stage's output named
 * "predictions", say) throw InputError, naming `what`, instead of failing deep inside a parser.
 */
export function decodePredictions(buf: Uint8Array, what = 'predictions'): Predictions {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const bad = (why: string): never => {
    throw new InputError(
      `${what} are not a predictions artifact (${why}); the input must be a multicrop-predict or fuse stage`,
    );
  };
  if (b.length < 4) bad(`${b.length} bytes`);
  const len = b.readUInt32LE(0);
  if (4 + len > b.length) bad('no header');
  let header: { classes: string[]; splits: Array<{ name: string; ids: string[]; labels: Array<number | null> }> };
  try {
    header = JSON.parse(b.subarray(4, 4 + len).toString()) as typeof header;
  } catch {
    return bad('its header is not JSON');
  }
  if (!Array.isArray(header?.classes) || !Array.isArray(header.splits)) bad('no classes or splits in its header');
  const expected = 4 + len + header.splits.reduce((n, s) => n + (s.ids?.length ?? 0) * header.classes.length * 4, 0);
  if (expected !== b.length) bad(`${b.length} bytes where its header says ${expected}`);
  let offset = 4 + len;
  const splits: Record<string, SplitPredictions> = {};
  for (const s of header.splits) {
    const n = s.ids.length * header.classes.length;
    const bytes = b.subarray(offset, offset + n * 4);
    // Copy: the blob's bytes need not be 4-byte aligned.
    splits[s.name] = {
      ids: s.ids,
      labels: s.labels,
      probs: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    };
    offset += n * 4;
  }
  return { classes: header.classes, splits };
}
