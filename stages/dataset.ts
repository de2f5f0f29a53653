// `dataset`: turns a folder of images (imagefolder, the AI Challenger 2017 scene layout, a CSV
// list) or a generated synthetic set into a manifest: class list, and per split the images with
// labels and content digests. The root folder is a dep, hashed through the stat memo, so an
// unchanged 50k-image folder costs stats, not reads. The formats' readers are data/dataset-readers.ts.
import type { FromSchema } from 'json-schema-to-ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { digestOf } from '../cache/canonical.js';
import { defineStage, InputError, type JsonSchema, type StageStore } from './contract.js';
import { aiChallenger, csvLists, imagefolder, type Listed } from './data/dataset-readers.js';
import type { ManifestRoot } from './data/manifest.js';

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: { enum: ['imagefolder', 'ai-challenger', 'csv', 'synthetic'], default: 'imagefolder' },
    root: {
      type: 'string',
      default: '',
      description: 'Dataset folder, relative to the project (unused by synthetic).',
    },
    splits: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
      minItems: 1,
      default: ['train', 'val', 'test'],
    },
    annotations: {
      type: 'object',
      default: {},
      additionalProperties: {
        type: 'object',
        required: ['json', 'images'],
        additionalProperties: false,
        properties: { json: { type: 'string' }, images: { type: 'string' } },
      },
      description:
        'ai-challenger: split → { json: annotation file, images: image folder }, relative to root. A split without an annotation file is an unlabelled test split.',
    },
    classNames: {
      type: ['string', 'null'],
      default: null,
      description: 'ai-challenger: CSV of id,chinese,english class names, relative to root.',
    },
    lists: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description:
        'csv: split → CSV file of path,label rows (RFC 4180: a field with commas or quotes is quoted, its quotes doubled), relative to root.',
    },
    classes: {
      type: 'integer',
      minimum: 2,
      maximum: 12,
      default: 6,
      description: 'synthetic: number of scene classes.',
    },
    perClass: {
      type: 'object',
      additionalProperties: false,
      default: { train: 40, val: 10, test: 10 },
      properties: {
        train: { type: 'integer', minimum: 0 },
        val: { type: 'integer', minimum: 0 },
        test: { type: 'integer', minimum: 0 },
      },
      required: ['train', 'val', 'test'],
    },
    size: { type: 'integer', minimum: 16, maximum: 2048, default: 96, description: 'synthetic: image side in pixels.' },
    onUnknownLabel: {
      enum: ['warn', 'fail'],
      default: 'warn',
      description:
        'A label that occurs in another split (val, test) but in no image of the train split becomes a class nothing trains. warn: keep it and log a warning naming the label, the split and the file; fail: the stage fails with that line.',
    },
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv. */
export type DatasetParams = FromSchema<typeof params>;

export const dataset = defineStage<DatasetParams>({
  name: 'dataset',
  // 2: entry paths relative to the manifest's root (data/manifest.ts), not to the project.
  // 3: csv lists are read as RFC 4180 (quoted fields, as export writes them), and a BOM is
  // skipped: a list with quotes gave its labels with the quotes, cut at their commas.
  version: 3,
  description: 'A labelled image set (imagefolder, ai-challenger, csv, or generated synthetic scenes) as a manifest.',
  params,
  inputs: {},
  isolate: true,
  deps: (p) => (p.format === 'synthetic' || !p.root ? [] : [p.root]),
  check(p, projectDir) {
    if (p.format === 'synthetic') return [];
    if (!p.root) return [{ param: 'format', message: `format "${p.format}" needs params.root, the dataset folder` }];
    const dir = resolve(projectDir, p.root);
    return existsSync(dir)
      ? []
      : [{ param: 'root', message: `dataset root "${p.root}" does not exist (resolved to ${dir})` }];
  },

  async run(ctx, p) {
    let listed: Listed;
    if (p.format === 'synthetic') {
      const { dir, root } = await generate(ctx.store, p, ctx.seed, ctx.log);
      const folder = { store: ctx.store, projectDir: ctx.projectDir, root: dir, where: root };
      listed = imagefolder(folder, ['train', 'val', 'test'], 'synthetic');
    } else {
      if (!p.root) throw new InputError(`format "${p.format}" needs params.root, the dataset folder`);
      const dir = resolve(ctx.projectDir, p.root);
      if (!existsSync(dir)) throw new InputError(`dataset root ${p.root} does not exist (resolved to ${dir})`);
      const where: ManifestRoot = { in: 'project', path: p.root };
      const folder = { store: ctx.store, projectDir: ctx.projectDir, root: dir, where };
      listed =
        p.format === 'imagefolder'
          ? imagefolder(folder, p.splits, 'imagefolder')
          : p.format === 'ai-challenger'
            ? aiChallenger(folder, p)
            : csvLists(folder, p);
    }
    const { manifest } = listed;
    const unknown = labelsNotInTrain(listed).map(
      (u) =>
        `${listed.where(u.split, u.first)}: label "${manifest.classes[u.label]}" is in split ${u.split} but in no train image (${u.count} image${u.count > 1 ? 's' : ''} there)`,
    );
    if (unknown.length && p.onUnknownLabel === 'fail') {
      throw new InputError(
        `${unknown[0]}${unknown.length > 1 ? `; … (${unknown.length - 1} more in the log)` : ''}`,
        unknown,
      );
    }
    for (const line of unknown) ctx.log(`warning: ${line}: a class nothing trains (onUnknownLabel: "fail" refuses it)`);
    const counts = Object.fromEntries(Object.entries(manifest.splits).map(([s, e]) => [`images.${s}`, e.length]));
    ctx.log(
      `${manifest.classes.length} classes; ${Object.entries(counts)
        .map(([k, v]) => `${k.slice(7)} ${v}`)
        .join(', ')}`,
    );
    return {
      outputs: { manifest: await ctx.store.putBlob(Buffer.from(JSON.stringify(manifest))) },
      metrics: { classes: manifest.classes.length, ...counts },
    };
  },
});

/** Where synthetic images live: beside the cache, named by what determines them. */
async function generate(
  store: StageStore,
  p: DatasetParams,
  seed: number,
  log: (l: string) => void,
): Promise<{ dir: string; root: ManifestRoot }> {
  const { generateSynthetic } = await import('./data/synthetic/index.js');
  const opts = { classes: p.classes, perClass: p.perClass, size: p.size, seed };
  const root: ManifestRoot = { in: 'cache', path: `datasets/synthetic-${digestOf(opts).slice(0, 16)}` };
  const dir = join(store.filesDir, root.path);
  const t0 = Date.now();
  const { files } = await generateSynthetic(dir, opts);
  log(`generated ${files} synthetic images in ${dir} (${Date.now() - t0} ms)`);
  return { dir, root };
}

/**
 * Labels that occur in a split other than train but in no train image, each with its first
 * entry there: the class list is the union over splits, so such a label silently becomes a
 * class the model is never shown. Nothing to say when there is no train split.
 */
function labelsNotInTrain({ manifest }: Listed): Array<{ label: number; split: string; first: number; count: number }> {
  const train = manifest.splits.train;
  if (!train) return [];
  const trained = new Set(train.map((e) => e.label));
  const found = new Map<number, { label: number; split: string; first: number; count: number }>();
  for (const [split, entries] of Object.entries(manifest.splits)) {
    if (split === 'train') continue;
    entries.forEach((e, i) => {
      if (e.label === null || trained.has(e.label)) return;
      const seen = found.get(e.label);
      if (seen) {
        if (seen.split === split) seen.count++;
      } else found.set(e.label, { label: e.label, split, first: i, count: 1 });
    });
  }
  return [...found.values()];
}
