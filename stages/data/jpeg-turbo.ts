// The decode stage's fast path for plain JPEGs: libjpeg-turbo called directly through
// @julusian/jpeg-turbo (prebuilt binaries inside the npm package). sharp spends 1.9–2.6 ms of
// CPU per 150×150 intel6 JPEG, mostly libvips' per-image pipeline set-up; this takes ~0.3 ms
// (node bench/decode-cost.mjs).
//
// The binding decodes with libjpeg-turbo's fast integer IDCT (TJFLAG_FASTDCT, not settable), so
// pixels are within a few grey levels of sharp, PIL and OpenCV rather than equal to them
// (docs/performance.md has the measured difference). Only JPEGs that need nothing else take
// this path: no EXIF rotation, no ICC profile to convert from, 1 or 3 channels, a baseline or
// progressive Huffman frame, within the pixel limit. Everything else, and anything libjpeg-turbo
// refuses (truncated, corrupt), goes to sharp, which applies the rest and gives the verdict.
import { createRequire } from 'node:module';

type Binding = typeof import('@julusian/jpeg-turbo');

let binding: Binding | null | undefined;

/** The binding, or null when it cannot load on this platform (then sharp decodes everything). */
export function jpegTurbo(): Binding | null {
  if (binding === undefined) {
    try { binding = createRequire(import.meta.url)('@julusian/jpeg-turbo') as Binding; } catch { binding = null; }
  }
  return binding;
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
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; } // no length
    if (marker === 0xda) return frame && { ...frame, orientation, hasIccProfile }; // first scan
    const length = be16(i + 2);
    const body = i + 4;
    if (length < 2 || body + length - 2 > bytes.length) return undefined;
    if (marker === 0xe1 && ascii(bytes, body, 6) === 'Exif\0\0') orientation = exifOrientation(bytes, body + 6, body + length - 2) ?? orientation;
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
  return (h.frame === 0xc0 || h.frame === 0xc1 || h.frame === 0xc2)
    && (h.components === 1 || h.components === 3)
    && h.orientation === 1 && !h.hasIccProfile
    && h.width > 0 && h.height > 0 && h.width * h.height <= maxPixels;
}

/**
 * RGB pixels written into `into` (width × height × 3 bytes from the header), or undefined when
 * the binding is missing or libjpeg-turbo refuses the data.
 */
export function decodeJpegRgb(bytes: Buffer, into: Buffer): { data: Uint8Array; width: number; height: number } | undefined {
  const jpg = jpegTurbo();
  if (!jpg) return undefined;
  try {
    const out = jpg.decompressSync(bytes, into, { format: jpg.FORMAT_RGB });
    return { data: out.data, width: out.width, height: out.height };
  } catch {
    return undefined; // sharp decodes it again and names the problem
  }
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
