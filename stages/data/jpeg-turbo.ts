// The decode stage's fast path for plain JPEGs: libjpeg-turbo's TurboJPEG 3 API called directly
// through the koffi FFI. sharp spends 1.9–2.6 ms of CPU per 150×150 intel6 JPEG, mostly
// libvips' per-image pipeline set-up; this takes ~0.26 ms (node bench/decode-cost.mjs).
//
// The library is the libturbojpeg.so.0 that @julusian/jpeg-turbo ships prebuilt for Linux
// (x64, arm, musl). Its own binding fixes the fast integer IDCT and cannot scale; through the
// TurboJPEG 3 API podium sets the accurate IDCT, the one libvips, PIL and OpenCV use, so the
// pixels are the same as sharp's, and scales by 1/2, 1/4 or 1/8 inside the IDCT for large
// shrinks (what sharp's shrink-on-load, PIL's draft mode and OpenCV's reduced decoding do).
// Where the library is missing (macOS and Windows builds link it into the binding), sharp
// decodes everything.
//
// Only JPEGs that need nothing else take this path: no EXIF rotation, no ICC profile to convert
// from, 1 or 3 channels, a baseline or progressive Huffman frame, within the pixel limit.
// Everything else, and anything libjpeg-turbo refuses (not a JPEG it can read), goes to sharp,
// which applies the rest and gives the verdict.
//
// libjpeg's warnings (corrupt entropy data, a truncated file) are verdicts, whichever decoder
// runs: the data is damaged even though libjpeg makes up pixels for it. libvips misses some of
// them (those jpeg_finish_decompress raises, such as a scan that ends early and leaves
// "extraneous bytes before marker 0xd9", come after its check), so jpegWarning() lets the sharp
// path ask libjpeg-turbo too, and both decoders reject the same files for the same reason.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The TurboJPEG 3 calls used here (turbojpeg.h, libjpeg-turbo 3.x). */
interface TurboJpeg {
  handle: unknown;
  /** Replaces `handle` with a fresh, configured one (after a failed call: see call()). */
  renew(): void;
  set(handle: unknown, param: number, value: number): number;
  get(handle: unknown, param: number): number;
  header(handle: unknown, jpeg: Uint8Array, size: number): number;
  scale(handle: unknown, factor: { num: number; denom: number }): number;
  decompress(handle: unknown, jpeg: Uint8Array, size: number, out: Uint8Array, pitch: number, format: number): number;
  errorCode(handle: unknown): number;
  errorString(handle: unknown): string;
}

/** libjpeg warned about the data (corrupt or truncated); the message is libjpeg's own. */
export class JpegWarning extends Error {}

// enum TJPARAM and friends, from turbojpeg.h (3.x).
const TJINIT_DECOMPRESS = 1;
const TJPARAM_STOPONWARNING = 0;
const TJPARAM_JPEGWIDTH = 5;
const TJPARAM_JPEGHEIGHT = 6;
const TJPARAM_PRECISION = 7;
const TJPARAM_COLORSPACE = 8;
const TJPARAM_FASTUPSAMPLE = 9;
const TJPARAM_FASTDCT = 10;
const TJPARAM_SCANLIMIT = 13;
const TJPARAM_LOSSLESS = 15;
const TJPF_RGB = 0;
const TJPF_GRAY = 6;
const TJPF_CMYK = 11;
const TJCS_GRAY = 2;
const TJCS_CMYK = 3;
const TJCS_YCCK = 4;
const TJERR_WARNING = 0;

let turbo: TurboJpeg | null | undefined;

/** libturbojpeg.so.0 inside @julusian/jpeg-turbo for this platform, if it ships one. */
function libraryPath(): string | undefined {
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('@julusian/jpeg-turbo/package.json'));
  } catch {
    return undefined;
  }
  return [`${process.platform}-${process.arch}`, `${process.platform}-${process.arch}-musl`]
    .map((platform) => join(root, 'prebuilds', `jpeg-turbo-${platform}`, 'libturbojpeg.so.0'))
    .find((path) => existsSync(path));
}

/**
 * A decompressor on this thread (TurboJPEG handles are not shared between threads), or null
 * when the library cannot load here: then sharp decodes everything.
 */
export function turboJpeg(): TurboJpeg | null {
  if (turbo !== undefined) return turbo;
  turbo = null;
  const path = libraryPath();
  if (!path) return turbo;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(path);
    // Anonymous: a named type would be registered again by each worker thread.
    const factor = koffi.struct({ num: 'int', denom: 'int' });
    const init = lib.func('void *tj3Init(int)');
    const destroy = lib.func('void tj3Destroy(void *)');
    const open = (): unknown => {
      const handle = init(TJINIT_DECOMPRESS);
      if (!handle) throw new Error('tj3Init failed');
      // The accurate IDCT and fancy upsampling are the library's defaults, set anyway: they are
      // what makes the pixels sharp's. The first warning (corrupt data, a truncated file) stops
      // the decode: it is the verdict (JpegWarning), and nothing more is worth decoding. The
      // scan limit bounds the work a hostile progressive JPEG can cause.
      t.set(handle, TJPARAM_FASTDCT, 0);
      t.set(handle, TJPARAM_FASTUPSAMPLE, 0);
      t.set(handle, TJPARAM_STOPONWARNING, 1);
      t.set(handle, TJPARAM_SCANLIMIT, 500);
      return handle;
    };
    const t: TurboJpeg = {
      handle: null,
      renew() {
        const old = t.handle;
        t.handle = open();
        destroy(old);
      },
      set: lib.func('int tj3Set(void *, int, int)'),
      get: lib.func('int tj3Get(void *, int)'),
      header: lib.func('int tj3DecompressHeader(void *, const uint8_t *, size_t)'),
      scale: lib.func('tj3SetScalingFactor', 'int', ['void *', factor]),
      decompress: lib.func('int tj3Decompress8(void *, const uint8_t *, size_t, _Out_ uint8_t *, int, int)'),
      errorCode: lib.func('int tj3GetErrorCode(void *)'),
      errorString: lib.func('const char *tj3GetErrorStr(void *)'),
    };
    t.handle = open();
    turbo = t;
  } catch {
    turbo = null;
  }
  return turbo;
}

export interface JpegHeader {
  width: number;
  height: number;
  components: number;
  /** The SOF marker (0xC0 baseline, 0xC1 extended, 0xC2 progressive, …). */
  frame: number;
  /** EXIF orientation (1 = as stored), 1 when there is none. */
  orientation: number;
  hasIccProfile: boolean;
}

/** Reads the markers up to the first scan; undefined when `bytes` is not a JPEG it can follow. */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  const be16 = (at: number): number => (bytes[at]! << 8) | bytes[at + 1]!;
  let frame: Pick<JpegHeader, 'frame' | 'width' | 'height' | 'components'> | undefined;
  let orientation = 1;
  let hasIccProfile = false;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    } // fill byte
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    } // no length
    if (marker === 0xda) return frame && { ...frame, orientation, hasIccProfile }; // first scan
    const length = be16(i + 2);
    const body = i + 4;
    if (length < 2 || body + length - 2 > bytes.length) return undefined;
    if (marker === 0xe1 && ascii(bytes, body, 6) === 'Exif\0\0')
      orientation = exifOrientation(bytes, body + 6, body + length - 2) ?? orientation;
    if (marker === 0xe2 && ascii(bytes, body, 12) === 'ICC_PROFILE\0') hasIccProfile = true;
    // Frame headers are C0–CF except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc && length >= 8) {
      frame = { frame: marker, height: be16(body + 1), width: be16(body + 3), components: bytes[body + 5]! };
    }
    i += 2 + length;
  }
  return undefined;
}

/** Whether libjpeg-turbo alone gives what decode's sharp pipeline would (up to the IDCT). */
export function fastPathApplies(h: JpegHeader, maxPixels: number): boolean {
  return (
    (h.frame === 0xc0 || h.frame === 0xc1 || h.frame === 0xc2) &&
    (h.components === 1 || h.components === 3) &&
    h.orientation === 1 &&
    !h.hasIccProfile &&
    h.width > 0 &&
    h.height > 0 &&
    h.width * h.height <= maxPixels
  );
}

/**
 * The largest IDCT scaling (1/8, 1/4 or 1/2) that keeps the shorter side at least `short`, as
 * [num, denom]; [1, 1] when the image is not at least twice that.
 */
export function dctScale(width: number, height: number, short: number): [number, number] {
  for (const denom of [8, 4, 2]) if (Math.ceil(Math.min(width, height) / denom) >= short) return [1, denom];
  return [1, 1];
}

/** Width or height after TurboJPEG's scaling (TJSCALED). */
export const scaled = (size: number, [num, denom]: [number, number]): number => Math.ceil((size * num) / denom);

/**
 * Decodes into `into` (scaled width × height × 3 bytes from the header) as RGB, scaled by
 * `factor` inside the IDCT; undefined when the library is missing or libjpeg-turbo refuses the
 * data (an error: sharp then names it). Throws JpegWarning when libjpeg warns about the data.
 */
export function decodeJpegRgb(
  bytes: Uint8Array,
  into: Uint8Array,
  factor: [number, number] = [1, 1],
): { data: Uint8Array; width: number; height: number } | undefined {
  const t = turboJpeg();
  if (!t) return undefined;
  if (!call(t, t.header(t.handle, bytes, bytes.length))) return undefined;
  const width = scaled(t.get(t.handle, TJPARAM_JPEGWIDTH), factor);
  const height = scaled(t.get(t.handle, TJPARAM_JPEGHEIGHT), factor);
  if (width * height * 3 > into.length) return undefined;
  if (!call(t, t.scale(t.handle, { num: factor[0], denom: factor[1] }))) return undefined;
  if (!call(t, t.decompress(t.handle, bytes, bytes.length, into, 0, TJPF_RGB))) return undefined;
  return { data: into.subarray(0, width * height * 3), width, height };
}

let scratch = new Uint8Array(0);

/**
 * libjpeg's first warning about `bytes` (e.g. "Corrupt JPEG data: bad Huffman code"), or
 * undefined when it has none, or cannot tell: the library is missing, the data is not a JPEG it
 * reads (an error: sharp names it), or it is over `maxPixels` (sharp refuses it). For the images
 * that do not take the fast path. Every coefficient is entropy-decoded, as the warnings come from
 * there, but at 1/8 scale, so the IDCT and colour conversion cost almost nothing.
 */
export function jpegWarning(bytes: Uint8Array, maxPixels: number): string | undefined {
  const t = turboJpeg();
  if (!t) return undefined;
  try {
    if (!call(t, t.header(t.handle, bytes, bytes.length))) return undefined;
    const w = t.get(t.handle, TJPARAM_JPEGWIDTH);
    const h = t.get(t.handle, TJPARAM_JPEGHEIGHT);
    // tj3Decompress8 reads 8-bit lossy JPEGs only; lossless ones cannot be scaled. sharp's own
    // failOn: 'warning' stays the check for those.
    if (
      w <= 0 ||
      h <= 0 ||
      w * h > maxPixels ||
      t.get(t.handle, TJPARAM_PRECISION) !== 8 ||
      t.get(t.handle, TJPARAM_LOSSLESS) === 1
    )
      return undefined;
    const colourspace = t.get(t.handle, TJPARAM_COLORSPACE);
    // libjpeg converts neither CMYK nor YCCK to RGB: those decode as CMYK, greyscale as grey.
    const [format, channels] =
      colourspace === TJCS_GRAY
        ? [TJPF_GRAY, 1]
        : colourspace === TJCS_CMYK || colourspace === TJCS_YCCK
          ? [TJPF_CMYK, 4]
          : [TJPF_RGB, 3];
    const size = scaled(w, [1, 8]) * scaled(h, [1, 8]) * channels;
    if (scratch.length < size) scratch = new Uint8Array(size);
    if (!call(t, t.scale(t.handle, { num: 1, denom: 8 }))) return undefined;
    call(t, t.decompress(t.handle, bytes, bytes.length, scratch, 0, format));
  } catch (err) {
    if (err instanceof JpegWarning) return err.message;
    throw err;
  }
  return undefined;
}

/**
 * Whether a TurboJPEG call succeeded; throws JpegWarning when it stopped on a warning. A failed
 * call leaves the handle unusable: after tj3DecompressHeader stops on a warning, every later
 * call on it fails with that same warning (libjpeg-turbo 3.1, tested), which would condemn every
 * following image of the thread. So the handle is replaced after any failure (rare: bad files).
 */
function call(t: TurboJpeg, status: number): boolean {
  if (status === 0) return true;
  const warning = t.errorCode(t.handle) === TJERR_WARNING ? t.errorString(t.handle) : undefined;
  t.renew();
  if (warning !== undefined) throw new JpegWarning(warning);
  return false;
}

function ascii(bytes: Uint8Array, at: number, n: number): string {
  return at + n <= bytes.length ? String.fromCharCode(...bytes.subarray(at, at + n)) : '';
}

/** Tag 0x0112 of IFD0 in the TIFF structure at [start, end); undefined if absent or unreadable. */
function exifOrientation(bytes: Uint8Array, start: number, end: number): number | undefined {
  if (end > bytes.length || start + 8 > end) return undefined;
  const little = bytes[start] === 0x49 && bytes[start + 1] === 0x49; // "II"
  if (!little && !(bytes[start] === 0x4d && bytes[start + 1] === 0x4d)) return undefined; // "MM"
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, end - start);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > view.byteLength) return undefined;
  const count = view.getUint16(ifd, little);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + k * 12;
    if (entry + 12 > view.byteLength) return undefined;
    if (view.getUint16(entry, little) === 0x0112) return view.getUint16(entry + 8, little);
  }
  return undefined;
}
