import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { resizeU8 } from '../../stages/data/resize.js';
import {
  dctScale,
  decodeJpegRgb,
  fastPathApplies,
  JpegWarning,
  jpegWarning,
  readJpegHeader,
  scaled,
  turboJpeg,
} from '../../stages/data/jpeg-turbo.js';

/** A 48×32 image with a gradient and a few edges, so the IDCT has something to do. */
function scene(w = 48, h = 32): sharp.Sharp {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.set([(x * 5) & 255, y < h / 2 ? 200 : 30, ((x + y) * 3) & 255], (y * w + x) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

describe('readJpegHeader / fastPathApplies', () => {
  it('reads size, channels and frame type of baseline, progressive and greyscale JPEGs, which take the fast path', async () => {
    const baseline = readJpegHeader(await scene().jpeg().toBuffer())!;
    expect(baseline).toEqual({
      width: 48,
      height: 32,
      components: 3,
      frame: 0xc0,
      orientation: 1,
      hasIccProfile: false,
    });
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
    const exif = readJpegHeader(
      await scene()
        .jpeg()
        .withExif({ IFD0: { Copyright: 'podium' } })
        .toBuffer(),
    )!;
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

describe('decodeJpegRgb (libjpeg-turbo through its TurboJPEG 3 API)', () => {
  it('loads from the npm package here', () => {
    expect(turboJpeg()).not.toBeNull();
  });

  it("decodes to exactly sharp's pixels (the accurate IDCT), greyscale to RGB", async () => {
    for (const img of [
      scene().jpeg({ quality: 90 }),
      scene().jpeg({ quality: 75, progressive: true }),
      scene().toColourspace('b-w').jpeg(),
      scene(301, 203).jpeg({ chromaSubsampling: '4:4:4' }),
    ]) {
      const jpeg = await img.toBuffer();
      const reference = await sharp(jpeg).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      const out = decodeJpegRgb(jpeg, Buffer.alloc(reference.data.length))!;
      expect([out.width, out.height]).toEqual([reference.info.width, reference.info.height]);
      expect(Buffer.from(out.data).equals(reference.data)).toBe(true);
    }
  });

  it('scales inside the IDCT to the smallest power of two that keeps the shorter side', async () => {
    expect(dctScale(1024, 768, 256)).toEqual([1, 2]);
    expect(dctScale(4000, 3000, 256)).toEqual([1, 8]);
    expect(dctScale(1000, 600, 150)).toEqual([1, 4]);
    expect(dctScale(150, 150, 256)).toEqual([1, 1]);
    expect(dctScale(500, 300, 151)).toEqual([1, 1]);
    const odd = await scene(301, 203).jpeg().toBuffer();
    const quarter = decodeJpegRgb(odd, Buffer.alloc(76 * 51 * 3), [1, 4])!;
    expect([quarter.width, quarter.height]).toEqual([scaled(301, [1, 4]), scaled(203, [1, 4])]);
    expect([quarter.width, quarter.height]).toEqual([76, 51]);
    // In content a 4 × 4 box shrink of the full decode (it differs where a block's frequencies
    // do: the sawtooth's edges).
    const jpeg = await scene(304, 200).blur(1).jpeg({ quality: 95 }).toBuffer();
    const full = decodeJpegRgb(jpeg, Buffer.alloc(304 * 200 * 3))!;
    const box = resizeU8(full.data, 304, 200, 76, 50);
    const out = decodeJpegRgb(jpeg, Buffer.alloc(76 * 50 * 3), [1, 4])!;
    let sum = 0;
    for (let i = 0; i < box.length; i++) sum += Math.abs(box[i]! - out.data[i]!);
    expect(sum / box.length).toBeLessThan(3);
  });

  it("refuses what it cannot read, and throws libjpeg's warning for damaged data, the handle staying usable", async () => {
    const jpeg = await scene().jpeg().toBuffer();
    const out = Buffer.alloc(48 * 32 * 3);
    const reference = Buffer.from(decodeJpegRgb(jpeg, out)!.data);
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]);
    // Cut inside the scan: the headers are whole (the image is 368 bytes, its scan ~100).
    const cut = jpeg.subarray(0, jpeg.length - 40);
    const checks: Array<[string, () => unknown]> = [
      ['truncated', () => expect(() => decodeJpegRgb(cut, out)).toThrow(new JpegWarning('Premature end of JPEG file'))],
      ['cut inside the headers', () => expect(() => decodeJpegRgb(jpeg.subarray(0, 200), out)).toThrow(JpegWarning)],
      // Stops on a warning inside tj3DecompressHeader, which left the handle failing ever after.
      ['garbage after SOI', () => expect(() => decodeJpegRgb(garbage, out)).toThrow(JpegWarning)],
      ['too small an output', () => expect(decodeJpegRgb(jpeg, Buffer.alloc(48 * 32 * 3 - 1))).toBeUndefined()],
      ['not a JPEG', () => expect(decodeJpegRgb(Buffer.from('not a jpeg'), Buffer.alloc(100))).toBeUndefined()],
      ['check of damaged data', () => expect(jpegWarning(cut, 1e6)).toBe('Premature end of JPEG file')],
      ['check of the intact file', () => expect(jpegWarning(jpeg, 1e6)).toBeUndefined()],
      ['check of garbage', () => expect(jpegWarning(garbage, 1e6)).toMatch(/./)],
      // Over the limit, sharp refuses it for that (the check decodes nothing).
      ['check over the pixel limit', () => expect(jpegWarning(cut, 48 * 32 - 1)).toBeUndefined()],
    ];
    for (const [what, check] of checks) {
      check();
      // The next image on this thread decodes as before.
      const again = decodeJpegRgb(jpeg, Buffer.alloc(48 * 32 * 3));
      expect(again && Buffer.from(again.data).equals(reference), `after ${what}`).toBe(true);
    }
  });
});
