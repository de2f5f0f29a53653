// `export`: writes a submission file from one Predictions artifact (the top-K classes of every
// image of a split), and its metrics when the split is labelled. The file is a side effect on disk
// like a command's outs: its bytes are the `submission` blob, restored on a cache hit when the
// file is missing or changed.
import type { FromSchema } from 'json-schema-to-ts';
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, resolve } from 'node:path';
import type { Digest } from '../cache/canonical.js';
import { defineStage, InputError, type InputArtifact, type JsonSchema } from './contract.js';
import { splitMetrics, topClasses } from './data/metrics.js';
import { decodePredictions, PREDICTIONS_PREFIX, type Predictions } from './data/predictions.js';
import { writeFileAtomic } from '../cache/write-atomic.js';

const params = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    format: {
      enum: ['ai-challenger', 'csv'],
      default: 'ai-challenger',
      description:
        'ai-challenger: [{"image_id", "label_id": [top-K]}]; csv: path,label1,…,labelK, one column per rank, fields quoted as RFC 4180 says (a class name may hold spaces, commas or quotes).',
    },
    split: { type: 'string', minLength: 1, default: 'test', description: 'Which split of the predictions to write.' },
    topK: { type: 'integer', minimum: 1, default: 3, description: 'Classes per image, best first.' },
    path: {
      type: 'string',
      minLength: 1,
      description: 'Where to write, relative to the project (must stay inside it).',
    },
    classIds: {
      enum: ['index', 'name'],
      default: 'index',
      description: 'Write class indices (the contest label ids) or class names.',
    },
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv. */
export type ExportParams = FromSchema<typeof params>;

export const exportStage = defineStage<ExportParams>({
  name: 'export',
  // 2: csv has one column per rank (path,label1,…,labelK), not the top-K joined by spaces,
  // which could not be split back when a class name holds a space.
  version: 2,
  description: 'Write a submission (AI Challenger JSON or CSV) of the top-K classes per image, inside the project.',
  params,
  inputs: {
    predictions: {
      many: false,
      required: true,
      description: 'a stage with a predictions output (e.g. fuse or multicrop-predict)',
    },
  },
  isolate: false,

  async run(ctx, p) {
    const abs = submissionPath(ctx.projectDir, p.path);
    const input = ctx.inputs.predictions as InputArtifact | undefined;
    if (!input) throw new InputError('export needs a predictions input');
    const name = pickPredictions(input);
    const bytes = ctx.store.getBlob(input.outputs[name]!);
    if (!bytes) throw new InputError(`predictions "${input.stageId}:${name}" are missing from the cache`);
    const preds = decodePredictions(bytes, `predictions "${input.stageId}:${name}"`);
    const text = formatSubmission(preds, p);
    writeFileAtomic(abs, text);
    const sp = preds.splits[p.split]!;
    ctx.log(`wrote ${sp.ids.length} rows of "${p.split}" (${p.format}, top ${p.topK}) to ${p.path}`);
    const outputs: Record<string, Digest> = { submission: await ctx.store.putBlob(Buffer.from(text)) };
    const metrics: Record<string, number> = { images: sp.ids.length };
    if (sp.labels.some((y) => y !== null)) {
      const m = splitMetrics(sp, preds.classes, p.topK);
      outputs.metrics = await ctx.store.putBlob(
        Buffer.from(`${JSON.stringify({ split: p.split, source: `${input.stageId}:${name}`, ...m }, null, 2)}\n`),
      );
      if (m.top1 !== null) metrics.top1 = m.top1;
      if (m.topK !== null) metrics[`top${p.topK}`] = m.topK;
      ctx.log(
        `${p.split} top1 ${m.top1?.toFixed(4)} top${p.topK} ${m.topK?.toFixed(4)} (${m.labelled} labelled, ${m.misclassified.length} misclassified)`,
      );
    }
    return { outputs, metrics };
  },

  // Relative to the project: podium runs in the project directory (see StageContext.projectDir).
  files: (p) => [isAbsolute(p.path) ? relative(process.cwd(), p.path) : normalize(p.path)],

  restore(ctx, p, record) {
    const digest = record.outputs.submission;
    if (!digest) return [];
    const abs = submissionPath(ctx.projectDir, p.path);
    if (ctx.store.hashPath(abs) === digest) return [];
    const bytes = ctx.store.getBlob(digest)!; // hash-checked; a missing one throws CacheCorruption
    writeFileAtomic(abs, bytes);
    return [relative(ctx.projectDir, abs)];
  },
});

/** The output named `predictions`, else the only predictions* output. */
function pickPredictions(input: InputArtifact): string {
  if (input.outputs[PREDICTIONS_PREFIX]) return PREDICTIONS_PREFIX;
  const names = Object.keys(input.outputs).filter((n) => n.startsWith(PREDICTIONS_PREFIX));
  if (names.length === 1) return names[0]!;
  if (!names.length)
    throw new InputError(
      `input stage "${input.stageId}" has no predictions output (outputs: ${Object.keys(input.outputs).join(', ') || 'none'})`,
    );
  throw new InputError(
    `input stage "${input.stageId}" has several predictions outputs (${names.join(', ')}): fuse them first`,
  );
}

/**
 * The absolute path to write, refusing anything outside the project: `../` escapes, absolute paths
 * elsewhere, and (for the parts that exist) symlinks leading out of it.
 */
export function submissionPath(projectDir: string, path: string): string {
  const abs = resolve(projectDir, path);
  const outside = (root: string, p: string): boolean => {
    const rel = relative(root, p);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel);
  };
  if (outside(projectDir, abs)) throw new InputError(`export path "${path}" is outside the project directory`);
  // Follow symlinks on the deepest existing ancestor of the file.
  let existing = dirname(abs);
  for (;;) {
    try {
      existing = realpathSync(existing);
      break;
    } catch {
      const up = dirname(existing);
      if (up === existing) break;
      existing = up;
    }
  }
  let realProject = projectDir;
  try {
    realProject = realpathSync(projectDir);
  } catch {
    /* keep as given */
  }
  if (existing !== realProject && outside(realProject, join(existing, 'x')))
    throw new InputError(`export path "${path}" leads outside the project directory (through a symlink)`);
  return abs;
}

/** The submission text for one split: every image exactly once, top-K best first. */
export function formatSubmission(
  preds: Predictions,
  p: Pick<ExportParams, 'format' | 'split' | 'topK' | 'classIds'>,
): string {
  const sp = preds.splits[p.split];
  if (!sp)
    throw new InputError(
      `split "${p.split}" is not in the predictions (splits: ${Object.keys(preds.splits).join(', ') || 'none'})`,
    );
  const k = preds.classes.length;
  if (p.topK > k) throw new InputError(`topK ${p.topK} is more than the ${k} classes`);
  const seen = new Set<string>();
  for (const id of sp.ids) {
    if (seen.has(id)) throw new InputError(`image "${id}" appears twice in split "${p.split}"`);
    seen.add(id);
  }
  const label = (c: number): number | string => (p.classIds === 'index' ? c : preds.classes[c]!);
  const tops = sp.ids.map((_, i) => topClasses(sp.probs, i, k, p.topK).map(label));
  switch (p.format) {
    case 'ai-challenger':
      return `[\n${sp.ids.map((id, i) => JSON.stringify({ image_id: id, label_id: tops[i] })).join(',\n')}\n]\n`;
    case 'csv': {
      // One column per rank: any separator inside one field could also occur in a class name
      // (imagefolder takes them from folder names), so only CSV's own quoting keeps them apart.
      const header = ['path', ...Array.from({ length: p.topK }, (_, r) => `label${r + 1}`)];
      const rows = sp.ids.map((id, i) => [id, ...tops[i]!.map(String)]);
      return [header, ...rows].map((row) => `${row.map(csvField).join(',')}\n`).join('');
    }
    default: {
      const never: never = p.format;
      throw new Error(`unknown export format ${String(never)}`);
    }
  }
}

/** RFC 4180: a field holding a quote, comma or line break is quoted, its quotes doubled. */
function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
