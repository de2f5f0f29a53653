import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeJpegRgb, fastPathApplies, jpegTurbo, readJpegHeader } from '../../stages/data/jpeg-turbo.js';

/** A 48×32 image with a gradient and a few edges, so the IDCT has something to do. */
function scene(w = 48, h = 32): sharp.Sharp {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([(x * 5) & 255, y < h / 2 ? 200 : 30, (x + y) * 3 & 255], (y * w + x) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

describe('readJpegHeader / fastPathApplies', () => {
  it('reads size, channels and frame type of baseline, progressive and greyscale JPEGs, which take the fast path', async () => {
    const baseline = readJpegHeader(await scene().jpeg().toBuffer())!;
    expect(baseline).toEqual({ width: 48, height: 32, components: 3, frame: 0xc0, orientation: 1, hasIccProfile: false });
    const progressive = readJpegHeader(await scene().jpeg({ progressive: true }).toBuffer())!;
    expect(progressive.frame).toBe(0xc2);
    const grey = readJpegHeader(await scene().toColourspace('b-w').jpeg().toBuffer())!;
    expect(grey.components).toBe(1);
    for (const h of [baseline, progressive, grey]) expect(fastPathApplies(h, 1e6)).toBe(true);
  });

  it('sends EXIF-rotated, ICC-tagged, CMYK and oversized JPEGs to sharp', async () => {
    const rotated = readJpegHeader(await scene().jpeg().withMetadata({ orientation: 6 }).toBuffer())!;
    expect(rotated.orientation).toBe(6);
    const tagged = readJpegHeader(await scene().jpeg().withIccProfile('p3').toBuffer())!;
    expect(tagged.hasIccProfile).toBe(true);
    const cmyk = readJpegHeader(await scene().toColourspace('cmyk').jpeg().toBuffer())!;
    expect(cmyk.components).toBe(4);
    for (const h of [rotated, tagged, cmyk]) expect(fastPathApplies(h, 1e6)).toBe(false);
    const plain = readJpegHeader(await scene().jpeg().toBuffer())!;
    expect(fastPathApplies(plain, 48 * 32 - 1)).toBe(false);
    // An EXIF block without a rotation keeps the fast path.
    const exif = readJpegHeader(await scene().jpeg().withExif({ IFD0: { Copyright: 'podium' } }).toBuffer())!;
    expect(exif).toMatchObject({ orientation: 1, hasIccProfile: false });
    expect(fastPathApplies(exif, 1e6)).toBe(true);
  });

  it('returns undefined for what is not a readable JPEG', async () => {
    expect(readJpegHeader(await scene().png().toBuffer())).toBeUndefined();
    expect(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff]))).toBeUndefined();
    const jpeg = await scene().jpeg().toBuffer();
    expect(readJpegHeader(jpeg.subarray(0, 40))).toBeUndefined(); // cut inside the headers
  });
});

describe('decodeJpegRgb (libjpeg-turbo)', () => {
  it('loads from the npm package here', () => {
    expect(jpegTurbo()).not.toBeNull();
  });

  it('decodes within a few grey levels of sharp (fast integer IDCT), greyscale to RGB', async () => {
    for (const img of [scene().jpeg({ quality: 90 }), scene().jpeg({ quality: 75, progressive: true }), scene().toColourspace('b-w').jpeg()]) {
      const jpeg = await img.toBuffer();
      const reference = await sharp(jpeg).toColourspace('srgb').raw().toBuffer();
      const out = decodeJpegRgb(jpeg, Buffer.alloc(48 * 32 * 3))!;
      expect([out.width, out.height]).toEqual([48, 32]);
      let sum = 0;
      for (let i = 0; i < reference.length; i++) sum += Math.abs(reference[i]! - out.data[i]!);
      expect(sum / reference.length).toBeLessThan(3);
    }
  });

  it('refuses truncated data instead of inventing pixels (sharp then names the problem)', async () => {
    const jpeg = await scene().jpeg().toBuffer();
    expect(decodeJpegRgb(jpeg.subarray(0, Math.floor(jpeg.length * 0.7)), Buffer.alloc(48 * 32 * 3))).toBeUndefined();
  });
});
