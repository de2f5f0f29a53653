import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { imageFile, type Manifest } from '../../stages/data/manifest.js';
import { Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

async function jpeg(rel: string, rgb: [number, number, number] = [200, 30, 30]): Promise<void> {
  const p = join(project.dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  await sharp({ create: { width: 12, height: 8, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .jpeg()
    .toFile(p);
}

function datasetPipeline(params: object): object {
  return { name: 'data', stages: { images: { uses: 'dataset', params } } };
}

async function manifest(): Promise<Manifest> {
  const digest = project.json('p.lock.json').stages.images.outputs.manifest;
  const store = new LmdbStore(join(project.dir, '.podium/cache'));
  try {
    return JSON.parse(store.getBlob(digest)!.toString()) as Manifest;
  } finally {
    await store.close();
  }
}

async function recordKeys(): Promise<string[]> {
  const store = new LmdbStore(join(project.dir, '.podium/cache'));
  try {
    return store.recordKeys();
  } finally {
    await store.close();
  }
}

/** path: the file the failure names, where the stage names one. */
async function expectInputError(params: object, message: string | RegExp, path?: string): Promise<void> {
  const before = await recordKeys();
  project.write('p.json', datasetPipeline(params));
  const r = await project.run();
  expect(r.exitCode).toBe(2);
  expect(r.out.stages[0].status).toBe('failed');
  expect(r.out.stages[0].failure).toEqual({ reason: 'input', ...(path ? { path } : {}) });
  expect(r.out.stages[0].reason).toMatch(message);
  expect(await recordKeys()).toEqual(before);
}

describe('dataset stage', () => {
  it('imagefolder: classes from folders, an unlabelled test split, digests of every file', async () => {
    project = new Project();
    await jpeg('data/train/sea/a.jpg');
    await jpeg('data/train/sea/b.jpg', [0, 0, 200]);
    await jpeg('data/train/forest/c.jpg');
    await jpeg('data/val/forest/d.jpg');
    await jpeg('data/test/e.jpg');
    project.write('p.json', datasetPipeline({ format: 'imagefolder', root: 'data' }));
    const r = await project.run();
    expect(r.exitCode).toBe(0);
    const m = await manifest();
    expect(m.classes).toEqual(['forest', 'sea']);
    expect(m.root).toEqual({ in: 'project', path: 'data' });
    expect(m.splits.train!.map((e) => [e.id, e.label, e.path])).toEqual([
      ['forest/c.jpg', 0, 'train/forest/c.jpg'],
      ['sea/a.jpg', 1, 'train/sea/a.jpg'],
      ['sea/b.jpg', 1, 'train/sea/b.jpg'],
    ]);
    expect(imageFile(m, m.splits.train![0]!, project.dir, join(project.dir, '.podium'))).toBe(
      join(project.dir, 'data/train/forest/c.jpg'),
    );
    expect(m.splits.test!.map((e) => [e.id, e.label])).toEqual([['e.jpg', null]]);
    expect(m.splits.train![0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await project.run()).status).toEqual({ images: 'cached' });
    await jpeg('data/train/sea/new.jpg');
    expect((await project.run()).status).toEqual({ images: 'ran' });
  });

  it('ai-challenger: annotation JSON per split, class-name CSV, unlabelled test folder', async () => {
    project = new Project();
    await jpeg('aic/train_images/x1.jpg');
    await jpeg('aic/train_images/x2.jpg');
    await jpeg('aic/test_images/t1.jpg');
    project.write('aic/train.json', [
      { image_id: 'x1.jpg', label_id: '2' },
      { image_id: 'x2.jpg', label_id: '0' },
    ]);
    project.write(
      'aic/classes.csv',
      'id,中文,english\n0,航站楼,airport_terminal\n1,停机坪,landing_field\n2,机舱,airplane_cabin\n',
    );
    const params = {
      format: 'ai-challenger',
      root: 'aic',
      classNames: 'classes.csv',
      annotations: { train: { json: 'train.json', images: 'train_images' }, test: { json: '', images: 'test_images' } },
    };
    project.write('p.json', datasetPipeline(params));
    expect((await project.run()).exitCode).toBe(0);
    const m = await manifest();
    expect(m.classes).toEqual(['airport_terminal', 'landing_field', 'airplane_cabin']);
    expect(m.splits.train!.map((e) => [e.id, e.label])).toEqual([
      ['x1.jpg', 2],
      ['x2.jpg', 0],
    ]);
    expect(m.splits.test!.map((e) => [e.id, e.label])).toEqual([['t1.jpg', null]]);

    project.write('aic/train.json', [{ image_id: 'x1.jpg', label_id: '7' }]);
    await expectInputError(params, /train\.json \/0: label_id 7 is outside the 3 classes of classes\.csv/);
    project.write('aic/train.json', [
      { image_id: 'x1.jpg', label_id: '1' },
      { image_id: 'x1.jpg', label_id: '1' },
    ]);
    await expectInputError(params, /train\.json \/1: duplicate image_id "x1\.jpg"/);
    project.write(
      'aic/train.json',
      '[\n  {"image_id": "x1.jpg", "label_id": "1"},\n  {"image_id": "x2.jpg" "label_id": "1"}\n]',
    );
    await expectInputError(
      params,
      /aic\/train\.json:3:23: invalid JSON: missing comma after \{"image_id": "x2\.jpg"/,
      'aic/train.json',
    );
  });

  it('csv: path,label rows', async () => {
    project = new Project();
    await jpeg('imgs/1.jpg');
    await jpeg('imgs/2.jpg');
    project.write('lists/train.csv', 'path,label\nimgs/1.jpg,cat\nimgs/2.jpg,dog\n');
    project.write('p.json', datasetPipeline({ format: 'csv', root: '.', lists: { train: 'lists/train.csv' } }));
    expect((await project.run()).exitCode).toBe(0);
    const m = await manifest();
    expect(m.classes).toEqual(['cat', 'dog']);
    expect(m.splits.train!.map((e) => [e.id, e.label])).toEqual([
      ['imgs/1.jpg', 0],
      ['imgs/2.jpg', 1],
    ]);
  });

  it('csv: quoted fields (RFC 4180), as export writes them: commas, quotes, spaces, non-ASCII', async () => {
    project = new Project();
    await jpeg('d/imgs/a, b.jpg');
    await jpeg('d/imgs/c.jpg');
    await jpeg('d/imgs/☃ é.jpg');
    project.write(
      'd/train.csv',
      '\uFEFFpath,label\r\n"imgs/a, b.jpg","cat, big"\r\nimgs/c.jpg,"say ""hi"""\r\n"imgs/☃ é.jpg",cat living room ☃ é\r\n',
    );
    project.write('p.json', datasetPipeline({ format: 'csv', root: 'd', lists: { train: 'train.csv' } }));
    const r = await project.run();
    expect(r.exitCode, r.stderr).toBe(0);
    const m = await manifest();
    expect(m.classes).toEqual(['cat living room ☃ é', 'cat, big', 'say "hi"']);
    expect(m.splits.train!.map((e) => [e.id, m.classes[e.label!]])).toEqual([
      ['imgs/a, b.jpg', 'cat, big'],
      ['imgs/c.jpg', 'say "hi"'],
      ['imgs/☃ é.jpg', 'cat living room ☃ é'],
    ]);
    // A quote left open is named with the line it starts on.
    project.write('d/train.csv', 'path,label\nimgs/c.jpg,cat\n"imgs/a, b.jpg,dog\n');
    await expectInputError(
      { format: 'csv', root: 'd', lists: { train: 'train.csv' } },
      /^d\/train\.csv:3: a quoted field is not closed/,
    );
  });

  it('warns about a label that occurs only outside train, or fails on it with onUnknownLabel "fail"', async () => {
    project = new Project();
    await jpeg('csv/imgs/1.jpg');
    await jpeg('csv/imgs/2.jpg');
    await jpeg('csv/imgs/3.jpg');
    await jpeg('csv/imgs/4.jpg');
    project.write('csv/lists/train.csv', 'path,label\nimgs/1.jpg,cat\nimgs/2.jpg,dog\n');
    project.write('csv/lists/val.csv', 'path,label\nimgs/3.jpg,cat\nimgs/4.jpg,zebra\n');
    const params = { format: 'csv', root: 'csv', lists: { train: 'lists/train.csv', val: 'lists/val.csv' } };
    project.write('p.json', datasetPipeline(params));
    expect((await project.run()).exitCode).toBe(0);
    // By default the class is kept (val can still be scored), with a warning in the stage's log.
    expect((await manifest()).classes).toEqual(['cat', 'dog', 'zebra']);
    const shown = (await project.cli('show', 'p.json', 'images')).stdout;
    expect(shown).toContain('warning: csv/lists/val.csv:3: label "zebra" is in split val but in no train image');
    await expectInputError(
      { ...params, onUnknownLabel: 'fail' },
      /^csv\/lists\/val\.csv:3: label "zebra" is in split val but in no train image/,
    );

    // imagefolder: a class folder only under val; the culprit is its first image.
    await jpeg('data/train/cat/1.jpg');
    await jpeg('data/val/cat/2.jpg');
    await jpeg('data/val/zebra/3.jpg');
    await jpeg('data/test/4.jpg');
    await expectInputError(
      { format: 'imagefolder', root: 'data', onUnknownLabel: 'fail' },
      /^data\/val\/zebra\/3\.jpg: label "zebra" is in split val but in no train image/,
    );

    // ai-challenger: a label id used in val only; the culprit is its annotation entry.
    await jpeg('aic/train_images/x1.jpg');
    await jpeg('aic/val_images/v1.jpg');
    await jpeg('aic/val_images/v2.jpg');
    project.write('aic/train.json', [{ image_id: 'x1.jpg', label_id: '0' }]);
    project.write('aic/val.json', [
      { image_id: 'v1.jpg', label_id: '0' },
      { image_id: 'v2.jpg', label_id: '1' },
    ]);
    const aic = {
      format: 'ai-challenger',
      root: 'aic',
      annotations: {
        train: { json: 'train.json', images: 'train_images' },
        val: { json: 'val.json', images: 'val_images' },
      },
    };
    await expectInputError(
      { ...aic, onUnknownLabel: 'fail' },
      /^aic\/val\.json \/1: label "1" is in split val but in no train image/,
    );
    project.write('aic/val.json', [
      { image_id: 'v1.jpg', label_id: '0' },
      { image_id: 'v2.jpg', label_id: '0' },
    ]);
    project.write('p.json', datasetPipeline({ ...aic, onUnknownLabel: 'fail' }));
    expect((await project.run()).exitCode).toBe(0);
  });

  it('synthetic: generates real JPEGs beside the cache, deterministically from the seed', async () => {
    project = new Project();
    project.write('p.json', {
      name: 'data',
      seed: 5,
      stages: {
        images: {
          uses: 'dataset',
          params: { format: 'synthetic', classes: 3, perClass: { train: 2, val: 1, test: 1 }, size: 32 },
        },
      },
    });
    expect((await project.run()).exitCode).toBe(0);
    const m = await manifest();
    const lockedManifest = project.json('p.lock.json').stages.images.outputs.manifest;
    expect(m.classes).toEqual(['buildings', 'forest', 'glacier']);
    expect([m.splits.train!.length, m.splits.val!.length, m.splits.test!.length]).toEqual([6, 3, 3]);
    expect(m.root.in).toBe('cache');
    expect(m.root.path).toMatch(/^datasets\/synthetic-[0-9a-f]{16}$/);
    expect(m.splits.train![0]!.path).toMatch(/^train\/buildings\/.*\.jpg$/);
    const meta = await sharp(imageFile(m, m.splits.val![0]!, project.dir, join(project.dir, '.podium'))).metadata(); // the store's filesDir
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 32, 32]);
    // The manifest does not depend on where the cache is (it is an artifact: keys downstream
    // would change with it).
    const elsewhere = await project.cli('run', 'p.json', '--cache', join(project.dir, 'elsewhere', 'cache'), '--json');
    expect(elsewhere.exitCode).toBe(0);
    expect(existsSync(join(project.dir, 'elsewhere', m.root.path))).toBe(true);
    const other = new LmdbStore(join(project.dir, 'elsewhere', 'cache'));
    try {
      expect(other.getRecord(project.json('p.lock.json').stages.images.key)!.outputs.manifest).toBe(lockedManifest);
    } finally {
      await other.close();
    }
    // Generated again, the same seed gives the same bytes (the manifest holds their digests).
    const again = await project.cli('run', 'p.json', '--force', 'images', '--json');
    expect(again.exitCode).toBe(0);
    expect((await manifest()).splits).toEqual(m.splits);
  });

  it('bad input: clear error, exit 2, nothing in the cache', async () => {
    project = new Project();
    // A missing root is found at analysis, with its position, even by a dry run.
    project.write('p.json', datasetPipeline({ format: 'imagefolder', root: 'nowhere' }));
    for (const extra of [[], ['--dry-run']]) {
      const r = await project.cli('run', 'p.json', ...extra);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/p\.json:\d+:\d+ \/stages\/images\/params\/root: dataset root "nowhere" does not exist/);
    }
    expect(existsSync(join(project.dir, '.podium'))).toBe(false);
    await jpeg('d/train/a/1.jpg');
    mkdirSync(join(project.dir, 'd/train/b'));
    await expectInputError({ format: 'imagefolder', root: 'd' }, 'class folder d/train/b is empty');
    writeFileSync(join(project.dir, 'd/train/b/notes.jpg'), 'this is text, not a JPEG');
    await expectInputError(
      { format: 'imagefolder', root: 'd' },
      'd/train/b/notes.jpg is not an image (unrecognised file header)',
      'd/train/b/notes.jpg',
    );
  });
});
