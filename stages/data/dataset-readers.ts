// The readers of the `dataset` kind's on-disk formats (stages/dataset.ts): imagefolder (also what
// the synthetic scenes are written as), the AI Challenger 2017 scene layout and CSV lists. Each
// gives a manifest and, for messages that name the culprit, the file that gave each entry.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { JsonSource } from '../util/json-source.js';
import { InputError, type StageStore } from '../contract.js';
import type { DatasetParams } from '../dataset.js';
import { IMAGE_EXTENSIONS, sniffImage, type Manifest, type ManifestEntry, type ManifestRoot } from './manifest.js';

/** A manifest, and where each entry came from (for messages that name the culprit file). */
export interface Listed {
  manifest: Manifest;
  /** The file (and line or JSON index) that gave entry `i` of `split`, as the project names it. */
  where(split: string, i: number): string;
}

/** The folder a reader lists: where it is on disk, how the manifest names it, and the store that hashes its images. */
export interface DatasetFolder {
  store: StageStore;
  projectDir: string;
  /** The folder's absolute path. */
  root: string;
  /** The folder as the manifest records it. */
  where: ManifestRoot;
}

function projectPath(projectDir: string, abs: string): string {
  const rel = relative(projectDir, abs);
  return isAbsolute(rel) ? abs : rel;
}

/** The entry of an image file under `dir` (the root's folder here), refusing files that are not images. */
function imageEntry(
  store: StageStore,
  projectDir: string,
  dir: string,
  abs: string,
  id: string,
  label: number | null,
): ManifestEntry {
  const head = Buffer.alloc(16);
  let fd: number;
  try {
    fd = openSync(abs, 'r');
  } catch {
    throw new InputError(`image ${projectPath(projectDir, abs)} does not exist`, [], projectPath(projectDir, abs));
  }
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (!sniffImage(head))
    throw new InputError(
      `${projectPath(projectDir, abs)} is not an image (unrecognised file header)`,
      [],
      projectPath(projectDir, abs),
    );
  const sha256 = store.hashPath(abs);
  if (!sha256)
    throw new InputError(
      `image ${projectPath(projectDir, abs)} disappeared while it was read`,
      [],
      projectPath(projectDir, abs),
    );
  return { id, path: relative(dir, abs).split(sep).join('/'), label, sha256 };
}

function listImages(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** root/<split>/<class>/*; a split holding images directly (no class folders) is unlabelled. */
export function imagefolder(folder: DatasetFolder, splits: string[], format: string): Listed {
  const { store, projectDir, root, where } = folder;
  const present = splits.filter((s) => existsSync(join(root, s)));
  if (!present.length)
    throw new InputError(`${projectPath(projectDir, root)} has none of the split folders ${splits.join(', ')}`);
  const classSet = new Set<string>();
  for (const s of present)
    for (const e of readdirSync(join(root, s), { withFileTypes: true })) if (e.isDirectory()) classSet.add(e.name);
  const classes = [...classSet].sort();
  if (!classes.length)
    throw new InputError(`${projectPath(projectDir, root)}: no class folders under ${present.join(', ')}`);
  const out: Manifest = { format, root: where, classes, splits: {} };
  for (const s of present) {
    const dirs = readdirSync(join(root, s), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    const entries: ManifestEntry[] = [];
    if (!dirs.length) {
      for (const f of listImages(join(root, s)))
        entries.push(imageEntry(store, projectDir, root, join(root, s, f), f, null));
    }
    for (const c of dirs) {
      const files = listImages(join(root, s, c));
      if (!files.length) throw new InputError(`class folder ${projectPath(projectDir, join(root, s, c))} is empty`);
      for (const f of files)
        entries.push(imageEntry(store, projectDir, root, join(root, s, c, f), `${c}/${f}`, classes.indexOf(c)));
    }
    out.splits[s] = entries;
  }
  return { manifest: out, where: (s, i) => projectPath(projectDir, join(root, out.splits[s]![i]!.path)) };
}

export function aiChallenger(folder: DatasetFolder, p: DatasetParams): Listed {
  const { store, projectDir, root, where } = folder;
  let classes: string[] | undefined;
  if (p.classNames) {
    const file = join(root, p.classNames);
    if (!existsSync(file)) throw new InputError(`class-name CSV ${projectPath(projectDir, file)} does not exist`);
    const rows = readFileSync(file, 'utf8')
      .replace(/^\uFEFF/, '')
      .split(/\r?\n/)
      .filter((l) => l.trim());
    classes = [];
    rows.forEach((row, i) => {
      const [id, zh, en] = row.split(',').map((c) => c.trim());
      const n = Number(id);
      if (!Number.isInteger(n)) {
        if (i === 0) return;
        throw new InputError(`${projectPath(projectDir, file)}:${i + 1}: class id "${id}" is not an integer`);
      }
      classes![n] = en || zh || String(n);
    });
  }
  const splits: Record<string, Array<{ id: string; abs: string; label: number | null }>> = {};
  let maxLabel = -1;
  for (const s of p.splits) {
    const spec = p.annotations[s];
    if (!spec) continue;
    const images = join(root, spec.images);
    if (!existsSync(images))
      throw new InputError(`image folder ${projectPath(projectDir, images)} for split ${s} does not exist`);
    const jsonFile = join(root, spec.json);
    if (!spec.json || !existsSync(jsonFile)) {
      // No annotation file: the contest's unlabelled test split.
      splits[s] = listImages(images)
        .filter((f) => IMAGE_EXTENSIONS.test(f))
        .map((f) => ({ id: f, abs: join(images, f), label: null }));
      continue;
    }
    const { value, errors } = JsonSource.read(jsonFile);
    if (errors.length) {
      const e = errors[0]!;
      throw new InputError(
        `${projectPath(projectDir, jsonFile)}:${e.line}:${e.column}: ${e.message}`,
        [],
        projectPath(projectDir, jsonFile),
      );
    }
    if (!Array.isArray(value))
      throw new InputError(`${projectPath(projectDir, jsonFile)}: expected a JSON array of {"image_id", "label_id"}`);
    const seen = new Set<string>();
    splits[s] = value.map((item: unknown, i: number) => {
      const a = item as { image_id?: unknown; label_id?: unknown };
      const label = Number(a.label_id);
      if (typeof a.image_id !== 'string' || !Number.isInteger(label) || label < 0)
        throw new InputError(
          `${projectPath(projectDir, jsonFile)} /${i}: expected {"image_id": "<file>", "label_id": "<class id>"}, got ${JSON.stringify(item)}`,
        );
      if (seen.has(a.image_id))
        throw new InputError(`${projectPath(projectDir, jsonFile)} /${i}: duplicate image_id "${a.image_id}"`);
      seen.add(a.image_id);
      if (classes && label >= classes.length)
        throw new InputError(
          `${projectPath(projectDir, jsonFile)} /${i}: label_id ${label} is outside the ${classes.length} classes of ${p.classNames}`,
        );
      maxLabel = Math.max(maxLabel, label);
      return { id: a.image_id, abs: join(images, a.image_id), label };
    });
  }
  if (!Object.keys(splits).length)
    throw new InputError(
      `ai-challenger needs params.annotations for at least one of the splits ${p.splits.join(', ')}`,
    );
  const names = classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  const manifest: Manifest = { format: 'ai-challenger', root: where, classes: names, splits: {} };
  for (const [s, items] of Object.entries(splits))
    manifest.splits[s] = items.map((it) => imageEntry(store, projectDir, root, it.abs, it.id, it.label));
  // Labelled splits list their images in annotation order: entry i is the JSON array's item i.
  return { manifest, where: (s, i) => `${projectPath(projectDir, join(root, p.annotations[s]!.json))} /${i}` };
}

export function csvLists(folder: DatasetFolder, p: DatasetParams): Listed {
  const { store, projectDir, root, where } = folder;
  const rowsBySplit: Record<string, Array<{ path: string; label: string | null; line: number }>> = {};
  for (const s of p.splits) {
    const list = p.lists[s];
    if (!list) continue;
    const file = join(root, list);
    if (!existsSync(file))
      throw new InputError(`CSV list ${projectPath(projectDir, file)} for split ${s} does not exist`);
    const records = csvRecords(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''), projectPath(projectDir, file));
    const seen = new Set<string>();
    rowsBySplit[s] = [];
    records.forEach(({ fields, line }, i) => {
      if ((fields.length === 1 && !fields[0]) || (i === 0 && fields.length > 1 && fields[0]!.toLowerCase() === 'path'))
        return;
      const [path, label] = fields;
      if (!path) throw new InputError(`${projectPath(projectDir, file)}:${line}: empty path`);
      if (seen.has(path)) throw new InputError(`${projectPath(projectDir, file)}:${line}: duplicate image ${path}`);
      seen.add(path);
      rowsBySplit[s]!.push({ path, label: label || null, line });
    });
  }
  if (!Object.keys(rowsBySplit).length)
    throw new InputError(`csv needs params.lists for at least one of the splits ${p.splits.join(', ')}`);
  const classes = [
    ...new Set(
      Object.values(rowsBySplit)
        .flat()
        .map((r) => r.label)
        .filter((l): l is string => l !== null),
    ),
  ].sort();
  const manifest: Manifest = { format: 'csv', root: where, classes, splits: {} };
  for (const [s, rows] of Object.entries(rowsBySplit)) {
    manifest.splits[s] = rows.map((r) =>
      imageEntry(
        store,
        projectDir,
        root,
        resolve(root, r.path),
        r.path,
        r.label === null ? null : classes.indexOf(r.label),
      ),
    );
  }
  return {
    manifest,
    where: (s, i) => `${projectPath(projectDir, join(root, p.lists[s]!))}:${rowsBySplit[s]![i]!.line}`,
  };
}

/**
 * The records of a CSV file as RFC 4180 has them (what export writes): a quoted field may hold
 * commas, line breaks and doubled quotes, so a class name is whatever the folder was called.
 * Unquoted fields are trimmed, as lists were read before; each record keeps the line it starts
 * on, for messages. `name` is the file as messages call it.
 */
function csvRecords(text: string, name: string): Array<{ fields: string[]; line: number }> {
  const records: Array<{ fields: string[]; line: number }> = [];
  let fields: string[] = [];
  let start = 1;
  let line = 1;
  let i = 0;
  for (;;) {
    // One field, at the start of a field.
    let field: string;
    if (text[i] === '"') {
      const opened = line;
      field = '';
      for (i++; ; i++) {
        if (i >= text.length) throw new InputError(`${name}:${opened}: a quoted field is not closed`);
        if (text[i] === '"') {
          if (text[i + 1] !== '"') {
            i++;
            break;
          }
          i++;
        } else if (text[i] === '\n') line++;
        field += text[i];
      }
      const rest = /^[ \t]*/.exec(text.slice(i, i + 64))![0].length;
      i += rest;
      if (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r')
        throw new InputError(`${name}:${line}: text after a closing quote (a quote inside a field is written "")`);
    } else {
      let end = i;
      while (end < text.length && text[end] !== ',' && text[end] !== '\n' && text[end] !== '\r') end++;
      field = text.slice(i, end).trim();
      i = end;
    }
    fields.push(field);
    if (text[i] === ',') {
      i++;
      continue;
    }
    // End of a record: a line break or the end of the text.
    records.push({ fields, line: start });
    if (text[i] === '\r' && text[i + 1] === '\n') i++;
    if (i >= text.length) break;
    i++;
    line++;
    start = line;
    fields = [];
    if (i >= text.length) break;
  }
  return records;
}
