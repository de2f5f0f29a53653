import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import type { Digest } from '../../cache/canonical.js';
import { decodeDecoded, type DecodedSet } from '../../stages/data/decoded.js';
import { Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

/** A w×h image, left half red and right half blue, so orientation is visible. */
function halves(w: number, h: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
  return px;
}

async function write(rel: string, img: sharp.Sharp): Promise<void> {
  const p = join(project.dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  await img.toFile(p);
}

const raw = (w: number, h: number): sharp.Sharp => sharp(halves(w, h), { raw: { width: w, height: h, channels: 3 } });

function pipeline(decode: object): object {
  return {
    name: 'dec',
    stages: {
      images: { uses: 'dataset', params: { format: 'imagefolder', root: 'data' } },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: decode },
    },
  };
}

async function decodedImages(): Promise<Record<string, { width: number; height: number; data: Uint8Array }>> {
  const lock = project.json('p.lock.json');
  const store = new LmdbStore(join(project.dir, '.podium/cache'));
  try {
    const set = JSON.parse(store.getBlob(lock.stages.decoded.outputs.images)!.toString()) as DecodedSet;
    const out: Record<string, { width: number; height: number; data: Uint8Array }> = {};
    for (const rows of Object.values(set.splits))
      for (const r of rows) {
        const img = decodeDecoded(store.getBlob(r.blob as Digest)!);
        out[r.id] = { width: img.width, height: img.height, data: Uint8Array.from(img.data) };
      }
    return out;
  } finally {
    await store.close();
  }
}

const pixel = (img: { width: number; data: Uint8Array }, x: number, y: number): number[] => [
  ...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3),
];

/** A 64×48 baseline JPEG (quality 90) of a blurred pattern: enough entropy-coded data to damage. */
async function corruptibleJpeg(): Promise<Buffer> {
  const [w, h] = [64, 48];
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i++) px[i] = ((i * 7) % 251) ^ (i / (w * 3) < h / 2 ? 0 : 128);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .blur(1.2)
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** `jpeg` with the EXIF segment (APP1) of `donor` inserted after its SOI: the scan data stays as it is. */
function withExifFrom(jpeg: Buffer, donor: Buffer): Buffer {
  let at = 2;
  while (!(donor[at] === 0xff && donor[at + 1] === 0xe1)) at += 2 + donor.readUInt16BE(at + 2);
  const app1 = donor.subarray(at, at + 2 + donor.readUInt16BE(at + 2));
  return Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}

/** A copy of `jpeg` with 4 bytes at `fraction` of its first scan's data set to 0, 1, 2, 3. */
function overwriteScan(jpeg: Buffer, fraction: number): Buffer {
  let sos = 2;
  while (!(jpeg[sos] === 0xff && jpeg[sos + 1] === 0xda)) sos += 2 + jpeg.readUInt16BE(sos + 2);
  const start = sos + 2 + jpeg.readUInt16BE(sos + 2);
  const at = Math.floor(start + (jpeg.length - 2 - start) * fraction);
  const out = Buffer.from(jpeg);
  for (let k = 0; k < 4; k++) if (out[at + k] !== 0xff) out[at + k] = k;
  return out;
}

describe('decode stage', () => {
  it('applies EXIF orientation and converts greyscale, CMYK and alpha images to RGB', async () => {
    project = new Project();
    await write('data/train/a/rotated.jpg', raw(40, 20).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }));
    await write('data/train/a/grey.jpg', raw(20, 20).greyscale().jpeg());
    await write('data/train/b/cmyk.jpg', raw(20, 20).toColourspace('cmyk').jpeg());
    await write(
      'data/train/b/alpha.png',
      sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } }).png(),
    );
    project.write('p.json', pipeline({ shortSide: null }));
    const r = await project.run();
    expect(r.exitCode).toBe(0);
    const imgs = await decodedImages();
    const rot = imgs['a/rotated.jpg']!;
    expect([rot.width, rot.height]).toEqual([20, 40]);
    // Orientation 6 turns the image 90° clockwise: the red left half ends up on top.
    expect(pixel(rot, 10, 5)[0]).toBeGreaterThan(200);
    expect(pixel(rot, 10, 35)[2]).toBeGreaterThan(200);
    const grey = imgs['a/grey.jpg']!;
    expect(grey.data.length).toBe(20 * 20 * 3);
    const [gr, gg, gb] = pixel(grey, 3, 3);
    expect(gr).toBe(gg);
    expect(gg).toBe(gb);
    const cmyk = imgs['b/cmyk.jpg']!;
    // Through CMYK the primaries get duller, but red stays on the left and blue on the right.
    const [lr, , lb] = pixel(cmyk, 2, 10);
    const [rr, , rb] = pixel(cmyk, 17, 10);
    expect(lr! - lb!).toBeGreaterThan(100);
    expect(rb! - rr!).toBeGreaterThan(60);
    expect(pixel(imgs['b/alpha.png']!, 5, 5)).toEqual([10, 200, 30]);
  });

  it('resizes the shorter side, crops the centre, and re-decodes only what is new', async () => {
    project = new Project();
    for (let i = 0; i < 4; i++) await write(`data/train/a/${i}.jpg`, raw(60, 30).jpeg());
    project.write('p.json', pipeline({ shortSide: 16, centerCrop: 12 }));
    await project.run();
    const imgs = await decodedImages();
    expect(Object.values(imgs).map((i) => [i.width, i.height])).toEqual(Array(4).fill([12, 12]));

    project.write('p.json', pipeline({ shortSide: 16 }));
    await project.run();
    expect(Object.values(await decodedImages()).map((i) => [i.width, i.height])).toEqual(Array(4).fill([32, 16]));
    expect((await project.cli('show', 'p.json', 'decoded')).stdout).toContain('4 new, 0 from the index');

    await write('data/train/a/extra.jpg', raw(60, 30).jpeg({ quality: 50 }));
    expect((await project.run()).status).toEqual({ images: 'ran', decoded: 'ran' });
    expect((await project.cli('show', 'p.json', 'decoded')).stdout).toContain('1 new, 4 from the index');
  });

  it('writes the same metrics to the lock whether images came from the index or were decoded now', async () => {
    project = new Project();
    // Plain JPEGs (libjpeg-turbo with the fast decoder), EXIF-rotated ones and PNGs (sharp).
    const files: Array<[string, sharp.Sharp]> = [];
    for (let i = 0; i < 4; i++) files.push([`data/train/a/plain${i}.jpg`, raw(40 + i, 30).jpeg()]);
    for (let i = 0; i < 2; i++)
      files.push([
        `data/train/b/rotated${i}.jpg`,
        raw(40 + i, 30)
          .jpeg()
          .withMetadata({ orientation: 6 }),
      ]);
    for (let i = 0; i < 2; i++) files.push([`data/val/b/png${i}.png`, raw(40 + i, 30).png()]);
    const params = { shortSide: 16, decoder: 'fast' };
    const metrics = async (...extra: string[]): Promise<Record<string, unknown>> => {
      const r = await project.run('p.json', ...extra);
      expect(r.exitCode, r.stderr).toBe(0);
      return project.json('p.lock.json').stages.decoded.metrics as Record<string, unknown>;
    };
    project.write('p.json', pipeline(params));

    // A run that stopped half way leaves half the images in the index; the rerun decodes the
    // other half. Adding images to a dataset does the same.
    for (const [rel, img] of files.filter((_, i) => i % 2 === 0)) await write(rel, img);
    await metrics();
    for (const [rel, img] of files.filter((_, i) => i % 2 === 1)) await write(rel, img);
    const resumed = await metrics();
    expect((await project.cli('show', 'p.json', 'decoded')).stdout).toContain('4 new, 4 from the index');
    const fromScratch = await metrics('--cache', join(project.dir, 'fresh-cache'));
    expect(fromScratch).toEqual({ images: 8, bad: 0, byLibjpegTurbo: 4, bySharp: 4 });
    expect(resumed).toEqual(fromScratch);
    // Everything from the index: still the same.
    expect(await metrics('--force', 'decoded')).toEqual(fromScratch);
  });

  it('decodes plain JPEGs with libjpeg-turbo to the same pixels as sharp, and the rest with sharp', async () => {
    project = new Project();
    const scene = (w: number, h: number, seed: number): sharp.Sharp => {
      const px = Buffer.alloc(w * h * 3);
      for (let i = 0; i < px.length; i++) px[i] = ((i * seed) % 251) ^ (i / (w * 3) < h / 2 ? 0 : 128);
      return sharp(px, { raw: { width: w, height: h, channels: 3 } }).blur(1.2);
    };
    await write('data/train/a/small.jpg', scene(90, 60, 7).jpeg({ quality: 90 })); // upscaled
    await write('data/train/a/grey.jpg', scene(90, 60, 5).toColourspace('b-w').jpeg()); // upscaled, 1 channel
    await write('data/train/a/large.jpg', scene(400, 300, 11).jpeg({ quality: 85, progressive: true })); // IDCT at 1/4, bilinear
    await write('data/train/b/same.jpg', scene(128, 64, 13).jpeg()); // short side already 64
    await write('data/train/b/rotated.jpg', scene(64, 128, 17).jpeg().withMetadata({ orientation: 8 })); // EXIF: sharp
    project.write('p.json', pipeline({ shortSide: 64, decoder: 'fast' }));
    expect((await project.run()).exitCode).toBe(0);
    const fast = await decodedImages();
    const shown = JSON.parse((await project.cli('show', 'p.json', 'decoded', '--json')).stdout);
    expect(shown.record.metrics).toMatchObject({ images: 5, byLibjpegTurbo: 4, bySharp: 1 });

    project.write('p.json', pipeline({ shortSide: 64, decoder: 'sharp' }));
    expect((await project.run()).exitCode).toBe(0);
    const reference = await decodedImages();
    expect(JSON.parse((await project.cli('show', 'p.json', 'decoded', '--json')).stdout).record.metrics).toMatchObject({
      byLibjpegTurbo: 0,
      bySharp: 5,
    });
    for (const [id, ref] of Object.entries(reference)) {
      const img = fast[id]!;
      expect([img.width, img.height], id).toEqual([ref.width, ref.height]);
      if (id === 'a/large.jpg') {
        // Shrinks differ in method (IDCT scaling + bilinear against libvips' shrink-on-load and
        // reduce), not in content.
        let sum = 0;
        for (let i = 0; i < ref.data.length; i++) sum += Math.abs(ref.data[i]! - img.data[i]!);
        expect(sum / ref.data.length, id).toBeLessThan(4);
      } else {
        // The same decode, then the same resize: the same bytes.
        expect(Buffer.from(img.data).equals(Buffer.from(ref.data)), id).toBe(true);
      }
    }
  });

  it("by default decodes with libjpeg-turbo exactly the JPEGs whose bytes then equal sharp's, and the shrinks with sharp", async () => {
    project = new Project();
    const scene = (w: number, h: number, seed: number): sharp.Sharp => {
      const px = Buffer.alloc(w * h * 3);
      for (let i = 0; i < px.length; i++) px[i] = ((i * seed) % 251) ^ (i / (w * 3) < h / 2 ? 0 : 128);
      return sharp(px, { raw: { width: w, height: h, channels: 3 } }).blur(1.2);
    };
    // libjpeg-turbo: upscales and no-resizes, in every chroma layout, progressive, grey, odd sizes.
    await write('data/train/a/420.jpg', scene(90, 60, 7).jpeg({ quality: 90 }));
    await write('data/train/a/444.jpg', scene(61, 47, 3).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }));
    await write('data/train/a/progressive.jpg', scene(47, 33, 19).jpeg({ progressive: true }));
    await write('data/train/a/grey.jpg', scene(90, 60, 5).toColourspace('b-w').jpeg());
    await write('data/train/a/same.jpg', scene(128, 64, 13).jpeg()); // short side already 64
    await write('data/val/a/tall.jpg', scene(64, 201, 23).jpeg()); // short side 64, long one odd
    // sharp: shrinks (slight and large), EXIF rotation, PNG.
    await write('data/train/b/slight.jpg', scene(70, 65, 29).jpeg());
    await write('data/train/b/large.jpg', scene(400, 300, 11).jpeg({ quality: 85 }));
    await write('data/train/b/rotated.jpg', scene(40, 50, 17).jpeg().withMetadata({ orientation: 6 }));
    await write('data/val/b/png.png', scene(50, 40, 31).png());
    project.write('p.json', pipeline({ shortSide: 64 }));
    expect((await project.run()).exitCode).toBe(0);
    const lock = project.json('p.lock.json').stages.decoded;
    expect(lock.params.decoder).toBe('exact');
    expect(lock.metrics).toEqual({ images: 10, bad: 0, byLibjpegTurbo: 6, bySharp: 4 });
    const exact = await decodedImages();
    project.write('p.json', pipeline({ shortSide: 64, decoder: 'sharp' }));
    expect((await project.run()).exitCode).toBe(0);
    const reference = await decodedImages();
    expect(Object.keys(exact).sort()).toEqual(Object.keys(reference).sort());
    for (const [id, ref] of Object.entries(reference)) {
      expect([exact[id]!.width, exact[id]!.height], id).toEqual([ref.width, ref.height]);
      expect(Buffer.from(exact[id]!.data).equals(Buffer.from(ref.data)), id).toBe(true);
    }
  });

  it('fails listing every bad image (truncated, empty, corrupt, too many pixels), or skips them', async () => {
    project = new Project();
    await write('data/train/a/good.jpg', raw(32, 32).jpeg());
    const noise = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const big = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
    writeFileSync(join(project.dir, 'data/train/a/truncated.jpg'), big.subarray(0, big.length >> 1));
    writeFileSync(
      join(project.dir, 'data/train/a/corrupt.jpg'),
      Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]),
    );
    await write(
      'data/train/a/huge.png',
      sharp({ create: { width: 400, height: 400, channels: 3, background: '#888' } }).png(),
    );
    await write(
      'data/train/a/huge.jpg',
      sharp({ create: { width: 400, height: 400, channels: 3, background: '#888' } }).jpeg(),
    );
    project.write('p.json', pipeline({ shortSide: 16, maxPixels: 100000 }));
    const r = await project.run();
    expect(r.exitCode).toBe(2);
    // Found in the worker process, and told across its IPC channel as a typed failure.
    expect(r.out.stages[1].failure).toEqual({ reason: 'input' });
    const reason: string = r.out.stages[1].reason;
    expect(reason).toMatch(/^4 bad images: /);
    const shown = (await project.cli('show', 'p.json', 'decoded')).stdout;
    expect(shown).toContain('record  none in the cache');

    project.write('p.json', pipeline({ shortSide: 16, maxPixels: 100000, onError: 'skip', decoder: 'fast' }));
    const skipped = await project.run();
    expect(skipped.exitCode).toBe(0);
    expect(Object.keys(await decodedImages())).toEqual(['a/good.jpg']);
    const store = new LmdbStore(join(project.dir, '.podium/cache'));
    const report = JSON.parse(store.getBlob(project.json('p.lock.json').stages.decoded.outputs.report)!.toString());
    await store.close();
    expect(report.bad.map((b: { id: string }) => b.id).sort()).toEqual([
      'a/corrupt.jpg',
      'a/huge.jpg',
      'a/huge.png',
      'a/truncated.jpg',
    ]);
    expect(report.bad.find((b: { id: string }) => b.id === 'a/huge.png').reason).toMatch(/pixel limit/);
    expect(readFileSync(join(project.dir, 'data/train/a/good.jpg')).length).toBeGreaterThan(0);

    // The same verdicts from the sharp decoder: libjpeg's warnings judge JPEGs on both paths,
    // and what libjpeg-turbo cannot read at all, sharp names on both.
    project.write('p.json', pipeline({ shortSide: 16, maxPixels: 100000, onError: 'skip', decoder: 'sharp' }));
    expect((await project.run()).exitCode).toBe(0);
    expect(Object.keys(await decodedImages())).toEqual(['a/good.jpg']);
    const store2 = new LmdbStore(join(project.dir, '.podium/cache'));
    const sharpReport = JSON.parse(
      store2.getBlob(project.json('p.lock.json').stages.decoded.outputs.report)!.toString(),
    );
    await store2.close();
    expect(sharpReport).toEqual(report);
  });

  it('refuses JPEGs that libjpeg warns about (corrupt entropy data) with every decoder, and they agree', async () => {
    project = new Project();
    // A valid JPEG from sharp, then 4 bytes of its entropy-coded data overwritten. libjpeg still
    // produces pixels for each (failOn: 'none' below), but warns. Where the damage sits decides
    // the warning: a code no Huffman table has, or a scan that ends early and leaves bytes before
    // EOI, which libjpeg only notices in jpeg_finish_decompress, after libvips' own check.
    const jpeg = await corruptibleJpeg();
    const huffman = overwriteScan(jpeg, 0.15);
    const trailing = overwriteScan(jpeg, 0.95);
    for (const bytes of [huffman, trailing])
      expect((await sharp(bytes, { failOn: 'none' }).raw().toBuffer()).length).toBe(64 * 48 * 3);
    await expect(sharp(huffman, { failOn: 'warning' }).raw().toBuffer()).rejects.toThrow(
      /Corrupt JPEG data: bad Huffman code/,
    );
    // libvips alone accepts this one: the stage must not rely on it.
    expect((await sharp(trailing, { failOn: 'warning' }).raw().toBuffer()).length).toBe(64 * 48 * 3);
    mkdirSync(join(project.dir, 'data/train/a'), { recursive: true });
    writeFileSync(join(project.dir, 'data/train/a/good.jpg'), jpeg);
    writeFileSync(join(project.dir, 'data/train/a/huffman.jpg'), huffman);
    writeFileSync(join(project.dir, 'data/train/a/trailing.jpg'), trailing);
    // The same damaged bytes behind an EXIF rotation, which sends them down the sharp path with
    // the fast decoder too.
    const rotated = withExifFrom(huffman, await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer());
    expect((await sharp(rotated).metadata()).orientation).toBe(6);
    writeFileSync(join(project.dir, 'data/train/a/rotated.jpg'), rotated);

    const reports: unknown[] = [];
    // The default decoder at short side 64 takes the libjpeg-turbo path (no shrink), at 16 sharp's.
    for (const [decoder, shortSide] of [
      ['sharp', 16],
      ['fast', 16],
      ['exact', 64],
    ] as const) {
      project.write('p.json', pipeline({ shortSide, ...(decoder !== 'exact' && { decoder }) }));
      const failed = await project.run();
      expect(failed.exitCode, decoder).toBe(2);
      const reason: string = failed.out.stages[1].reason;
      expect(reason, decoder).toMatch(/^3 bad images: /);
      for (const name of ['huffman', 'trailing', 'rotated'])
        expect(reason, decoder).toContain(`data/train/a/${name}.jpg: Corrupt JPEG data`);

      project.write('p.json', pipeline({ shortSide, ...(decoder !== 'exact' && { decoder }), onError: 'skip' }));
      expect((await project.run()).exitCode, decoder).toBe(0);
      expect(Object.keys(await decodedImages()), decoder).toEqual(['a/good.jpg']);
      expect(project.json('p.lock.json').stages.decoded.metrics.byLibjpegTurbo, decoder).toBe(
        decoder === 'sharp' ? 0 : 1,
      );
      const store = new LmdbStore(join(project.dir, '.podium/cache'));
      reports.push(JSON.parse(store.getBlob(project.json('p.lock.json').stages.decoded.outputs.report)!.toString()));
      await store.close();
    }
    const bad = (reports[0] as { bad: Array<{ id: string; reason: string }> }).bad;
    expect(bad.map((b) => [b.id, b.reason])).toEqual([
      ['a/huffman.jpg', 'Corrupt JPEG data: bad Huffman code'],
      ['a/rotated.jpg', 'Corrupt JPEG data: bad Huffman code'],
      ['a/trailing.jpg', expect.stringMatching(/^Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9$/)],
    ]);
    // The A/B check: the decoders find the same bad files, for the same reasons.
    expect(reports[1]).toEqual(reports[0]);
    expect(reports[2]).toEqual(reports[0]);
  });

  it('gives each bad image its own reason, the same on every run, however many fail at once', async () => {
    // libvips' error buffer is process-wide: two worker threads failing at once could read each
    // other's message. Twelve bad images among good ones make that likely on two threads.
    const noise = Buffer.alloc(48 * 48 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const jpeg = await sharp(noise, { raw: { width: 48, height: 48, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
    const png = await sharp(noise, { raw: { width: 48, height: 48, channels: 3 } })
      .png()
      .toBuffer();
    const files: Record<string, Buffer> = {};
    const truncatedPngs = new Set<string>();
    for (let k = 0; k < 12; k++) {
      if (k % 2 && k % 3) truncatedPngs.add(`a/bad${k}.png`);
      files[`a/good${k}.jpg`] = jpeg;
      files[`a/bad${k}.${k % 2 ? 'png' : 'jpg'}`] =
        k % 3 === 0
          ? Buffer.concat([jpeg.subarray(0, 4), Buffer.alloc(100 + k, k)])
          : (k % 2 ? png : jpeg).subarray(0, 100 + 40 * k);
    }
    const reports: unknown[] = [];
    const projects = [new Project(), new Project()];
    try {
      for (const each of projects) {
        project = each;
        for (const [rel, bytes] of Object.entries(files)) {
          mkdirSync(join(project.dir, 'data/train', rel, '..'), { recursive: true });
          writeFileSync(join(project.dir, 'data/train', rel), bytes);
        }
        project.write('p.json', pipeline({ shortSide: 16, onError: 'skip' }));
        expect((await project.run()).exitCode).toBe(0);
        const store = new LmdbStore(join(project.dir, '.podium/cache'));
        reports.push(JSON.parse(store.getBlob(project.json('p.lock.json').stages.decoded.outputs.report)!.toString()));
        await store.close();
      }
    } finally {
      projects[0]!.cleanup();
    }
    const bad = (reports[0] as { bad: Array<{ id: string; reason: string }> }).bad;
    expect(bad.map((b) => b.id)).toEqual(
      Array.from({ length: 12 }, (_, k) => `a/bad${k}.${k % 2 ? 'png' : 'jpg'}`).sort(),
    );
    expect(reports[1]).toEqual(reports[0]);
    for (const b of bad) {
      expect(b.reason).not.toMatch(/unknown error/i);
      // Each reason speaks of its own kind of file: a truncated PNG is not reported as a JPEG.
      if (truncatedPngs.has(b.id)) expect(b.reason).not.toMatch(/jpeg/i);
    }
  });
});
