// `dataset`: turns a folder of images (imagefolder, the AI Challenger 2017 scene layout, a CSV
// list) or a generated synthetic set into a manifest: class list, and per split the images with
// labels and content digests. The root folder is a dep, hashed through the stat memo, so an
// unchanged 50k-image folder costs stats, not reads.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { digestOf, type Digest } from '../cache/canonical.js';
import { hashFile } from '../cache/hash-files.js';
import type { Store } from '../cache/store.js';
import { JsonSource } from './util/json-source.js';
import { defineStage, InputError } from './contract.js';
import { IMAGE_EXTENSIONS, sniffImage, type Manifest, type ManifestEntry, type ManifestRoot } from './data/manifest.js';

export interface DatasetParams {
  format: 'imagefolder' | 'ai-challenger' | 'csv' | 'synthetic';
  root: string;
  splits: string[];
  /** ai-challenger: per split, the annotation JSON and the image folder (relative to root). */
  annotations: Record<string, { json: string; images: string }>;
  /** ai-challenger: optional CSV `id,中文,english` giving class names. */
  classNames: string | null;
  /** csv: per split, a CSV of `path,label` rows (paths relative to root). */
  lists: Record<string, string>;
  /** synthetic: generated scene classes. */
  classes: number;
  perClass: { train: number; val: number; test: number };
  size: number;
}

export const dataset = defineStage<DatasetParams>({
  name: 'dataset',
  // 2: entry paths relative to the manifest's root (data/manifest.ts), not to the project.
  version: 2,
  description: 'A labelled image set (imagefolder, ai-challenger, csv, or generated synthetic scenes) as a manifest.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      format: { enum: ['imagefolder', 'ai-challenger', 'csv', 'synthetic'], default: 'imagefolder' },
      root: { type: 'string', default: '', description: 'Dataset folder, relative to the project (unused by synthetic).' },
      splits: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' }, minItems: 1, default: ['train', 'val', 'test'] },
      annotations: {
        type: 'object',
        default: {},
        additionalProperties: { type: 'object', required: ['json', 'images'], additionalProperties: false, properties: { json: { type: 'string' }, images: { type: 'string' } } },
        description: 'ai-challenger: split → { json: annotation file, images: image folder }, relative to root. A split without an annotation file is an unlabelled test split.',
      },
      classNames: { type: ['string', 'null'], default: null, description: 'ai-challenger: CSV of id,chinese,english class names, relative to root.' },
      lists: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'csv: split → CSV file of path,label rows, relative to root.' },
      classes: { type: 'integer', minimum: 2, maximum: 12, default: 6, description: 'synthetic: number of scene classes.' },
      perClass: {
        type: 'object',
        additionalProperties: false,
        default: { train: 40, val: 10, test: 10 },
        properties: { train: { type: 'integer', minimum: 0 }, val: { type: 'integer', minimum: 0 }, test: { type: 'integer', minimum: 0 } },
        required: ['train', 'val', 'test'],
      },
      size: { type: 'integer', minimum: 16, maximum: 2048, default: 96, description: 'synthetic: image side in pixels.' },
    },
  },
  inputs: {},
  isolate: true,
  deps: (p) => (p.format === 'synthetic' || !p.root ? [] : [p.root]),

  async run(ctx, p) {
    let manifest: Manifest;
    if (p.format === 'synthetic') {
      const { dir, root } = await generate(ctx.store, p, ctx.seed, ctx.log);
      manifest = imagefolder(ctx.store, ctx.projectDir, dir, root, ['train', 'val', 'test'], 'synthetic');
    } else {
      if (!p.root) throw new InputError(`format "${p.format}" needs params.root, the dataset folder`);
      const dir = resolve(ctx.projectDir, p.root);
      if (!existsSync(dir)) throw new InputError(`dataset root ${p.root} does not exist (resolved to ${dir})`);
      const root: ManifestRoot = { in: 'project', path: p.root };
      manifest = p.format === 'imagefolder' ? imagefolder(ctx.store, ctx.projectDir, dir, root, p.splits, 'imagefolder')
        : p.format === 'ai-challenger' ? aiChallenger(ctx.store, ctx.projectDir, dir, root, p)
          : csvLists(ctx.store, ctx.projectDir, dir, root, p);
    }
    const counts = Object.fromEntries(Object.entries(manifest.splits).map(([s, e]) => [`images.${s}`, e.length]));
    ctx.log(`${manifest.classes.length} classes; ${Object.entries(counts).map(([k, v]) => `${k.slice(7)} ${v}`).join(', ')}`);
    return { outputs: { manifest: await ctx.store.putBlob(Buffer.from(JSON.stringify(manifest))) }, metrics: { classes: manifest.classes.length, ...counts } };
  },
});

/** Where synthetic images live: beside the cache, named by what determines them. */
async function generate(store: Store, p: DatasetParams, seed: number, log: (l: string) => void): Promise<{ dir: string; root: ManifestRoot }> {
  const { generateSynthetic } = await import('./data/synthetic/index.js');
  const opts = { classes: p.classes, perClass: p.perClass, size: p.size, seed };
  const root: ManifestRoot = { in: 'cache', path: `datasets/synthetic-${digestOf(opts).slice(0, 16)}` };
  const dir = join(dirname(store.path), root.path);
  const t0 = Date.now();
  const { files } = await generateSynthetic(dir, opts);
  log(`generated ${files} synthetic images in ${dir} (${Date.now() - t0} ms)`);
  return { dir, root };
}

function projectPath(projectDir: string, abs: string): string {
  const rel = relative(projectDir, abs);
  return isAbsolute(rel) ? abs : rel;
}

/** The entry of an image file under `dir` (the root's folder here), refusing files that are not images. */
function imageEntry(store: Store, projectDir: string, dir: string, abs: string, id: string, label: number | null): ManifestEntry {
  const head = Buffer.alloc(16);
  let fd: number;
  try { fd = openSync(abs, 'r'); } catch { throw new InputError(`image ${projectPath(projectDir, abs)} does not exist`); }
  try { readSync(fd, head, 0, 16, 0); } finally { closeSync(fd); }
  if (!sniffImage(head)) throw new InputError(`${projectPath(projectDir, abs)} is not an image (unrecognised file header)`);
  return { id, path: relative(dir, abs).split(sep).join('/'), label, sha256: hashFile(store, abs) as Digest };
}

function listImages(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

/** root/<split>/<class>/*; a split holding images directly (no class folders) is unlabelled. */
function imagefolder(store: Store, projectDir: string, root: string, where: ManifestRoot, splits: string[], format: string): Manifest {
  const present = splits.filter((s) => existsSync(join(root, s)));
  if (!present.length) throw new InputError(`${projectPath(projectDir, root)} has none of the split folders ${splits.join(', ')}`);
  const classSet = new Set<string>();
  for (const s of present) for (const e of readdirSync(join(root, s), { withFileTypes: true })) if (e.isDirectory()) classSet.add(e.name);
  const classes = [...classSet].sort();
  if (!classes.length) throw new InputError(`${projectPath(projectDir, root)}: no class folders under ${present.join(', ')}`);
  const out: Manifest = { format, root: where, classes, splits: {} };
  for (const s of present) {
    const dirs = readdirSync(join(root, s), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    const entries: ManifestEntry[] = [];
    if (!dirs.length) {
      for (const f of listImages(join(root, s))) entries.push(imageEntry(store, projectDir, root, join(root, s, f), f, null));
    }
    for (const c of dirs) {
      const files = listImages(join(root, s, c));
      if (!files.length) throw new InputError(`class folder ${projectPath(projectDir, join(root, s, c))} is empty`);
      for (const f of files) entries.push(imageEntry(store, projectDir, root, join(root, s, c, f), `${c}/${f}`, classes.indexOf(c)));
    }
    out.splits[s] = entries;
  }
  return out;
}

function aiChallenger(store: Store, projectDir: string, root: string, where: ManifestRoot, p: DatasetParams): Manifest {
  let classes: string[] | undefined;
  if (p.classNames) {
    const file = join(root, p.classNames);
    if (!existsSync(file)) throw new InputError(`class-name CSV ${projectPath(projectDir, file)} does not exist`);
    const rows = readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim());
    classes = [];
    rows.forEach((row, i) => {
      const [id, zh, en] = row.split(',').map((c) => c.trim());
      const n = Number(id);
      if (!Number.isInteger(n)) { if (i === 0) return; throw new InputError(`${projectPath(projectDir, file)}:${i + 1}: class id "${id}" is not an integer`); }
      classes![n] = en || zh || String(n);
    });
  }
  const splits: Record<string, Array<{ id: string; abs: string; label: number | null }>> = {};
  let maxLabel = -1;
  for (const s of p.splits) {
    const spec = p.annotations[s];
    if (!spec) continue;
    const images = join(root, spec.images);
    if (!existsSync(images)) throw new InputError(`image folder ${projectPath(projectDir, images)} for split ${s} does not exist`);
    const jsonFile = join(root, spec.json);
    if (!spec.json || !existsSync(jsonFile)) {
      // No annotation file: the contest's unlabelled test split.
      splits[s] = listImages(images).filter((f) => IMAGE_EXTENSIONS.test(f)).map((f) => ({ id: f, abs: join(images, f), label: null }));
      continue;
    }
    const { value, errors } = JsonSource.read(jsonFile);
    if (errors.length) { const e = errors[0]!; throw new InputError(`${projectPath(projectDir, jsonFile)}:${e.line}:${e.column}: ${e.message}`); }
    if (!Array.isArray(value)) throw new InputError(`${projectPath(projectDir, jsonFile)}: expected a JSON array of {"image_id", "label_id"}`);
    const seen = new Set<string>();
    splits[s] = value.map((item: unknown, i: number) => {
      const a = item as { image_id?: unknown; label_id?: unknown };
      const label = Number(a.label_id);
      if (typeof a.image_id !== 'string' || !Number.isInteger(label) || label < 0) throw new InputError(`${projectPath(projectDir, jsonFile)} /${i}: expected {"image_id": "<file>", "label_id": "<class id>"}, got ${JSON.stringify(item)}`);
      if (seen.has(a.image_id)) throw new InputError(`${projectPath(projectDir, jsonFile)} /${i}: duplicate image_id "${a.image_id}"`);
      seen.add(a.image_id);
      if (classes && label >= classes.length) throw new InputError(`${projectPath(projectDir, jsonFile)} /${i}: label_id ${label} is outside the ${classes.length} classes of ${p.classNames}`);
      maxLabel = Math.max(maxLabel, label);
      return { id: a.image_id, abs: join(images, a.image_id), label };
    });
  }
  if (!Object.keys(splits).length) throw new InputError(`ai-challenger needs params.annotations for at least one of the splits ${p.splits.join(', ')}`);
  const names = classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const manifest: Manifest = { format: 'ai-challenger', root: where, classes: names, splits: {} };
  for (const [s, items] of Object.entries(splits)) manifest.splits[s] = items.map((it) => imageEntry(store, projectDir, root, it.abs, it.id, it.label));
  return manifest;
}

function csvLists(store: Store, projectDir: string, root: string, where: ManifestRoot, p: DatasetParams): Manifest {
  const rowsBySplit: Record<string, Array<{ path: string; label: string | null; line: number }>> = {};
  for (const s of p.splits) {
    const list = p.lists[s];
    if (!list) continue;
    const file = join(root, list);
    if (!existsSync(file)) throw new InputError(`CSV list ${projectPath(projectDir, file)} for split ${s} does not exist`);
    const lines = readFileSync(file, 'utf8').split(/\r?\n/);
    const seen = new Set<string>();
    rowsBySplit[s] = [];
    lines.forEach((line, i) => {
      if (!line.trim() || (i === 0 && /^path\s*,/i.test(line))) return;
      const [path, label] = line.split(',').map((c) => c.trim());
      if (!path) throw new InputError(`${projectPath(projectDir, file)}:${i + 1}: empty path`);
      if (seen.has(path)) throw new InputError(`${projectPath(projectDir, file)}:${i + 1}: duplicate image ${path}`);
      seen.add(path);
      rowsBySplit[s]!.push({ path, label: label || null, line: i + 1 });
    });
  }
  if (!Object.keys(rowsBySplit).length) throw new InputError(`csv needs params.lists for at least one of the splits ${p.splits.join(', ')}`);
  const classes = [...new Set(Object.values(rowsBySplit).flat().map((r) => r.label).filter((l): l is string => l !== null))].sort();
  const manifest: Manifest = { format: 'csv', root: where, classes, splits: {} };
  for (const [s, rows] of Object.entries(rowsBySplit)) {
    manifest.splits[s] = rows.map((r) => imageEntry(store, projectDir, root, resolve(root, r.path), r.path, r.label === null ? null : classes.indexOf(r.label)));
  }
  return manifest;
}

