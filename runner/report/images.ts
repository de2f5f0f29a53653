// Pictures for the report as data: URLs. Thumbnails come from the decoded-image blobs in the cache
// (the pixels the models saw), encoded as JPEG by sharp; sharp is loaded only when there is a
// gallery to draw.
import type { Digest } from '../../cache/canonical.js';
import type { Store } from '../../cache/store.js';
import { decodeDecoded } from '../../stages/data/decoded.js';

/** Longest side of a thumbnail, in pixels: small enough for 60 per gallery, big enough to recognise a scene. */
export const THUMB_SIDE = 128;

export function dataUrl(mime: string, bytes: Uint8Array): string {
  return `data:${mime};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** digest → JPEG data URL; blobs gone from the cache or corrupt are left out (the gallery says "no thumbnail"). */
export async function thumbnails(store: Store, digests: Iterable<Digest>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const todo = [...new Set(digests)];
  if (!todo.length) return out;
  const sharp = (await import('sharp')).default;
  for (const d of todo) {
    let b: Buffer | undefined;
    try {
      b = store.getBlob(d, { verify: true });
    } catch {
      b = undefined;
    } // corrupt: no thumbnail rather than a wrong one
    if (!b) continue;
    const img = decodeDecoded(b);
    // Small images are enlarged with nearest-neighbour, so the thumbnail shows the real pixels.
    const jpeg = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
      raw: { width: img.width, height: img.height, channels: 3 },
    })
      .resize({
        width: THUMB_SIDE,
        height: THUMB_SIDE,
        fit: 'inside',
        kernel: img.width < THUMB_SIDE && img.height < THUMB_SIDE ? 'nearest' : 'lanczos3',
      })
      .jpeg({ quality: 85 })
      .toBuffer();
    out.set(d, dataUrl('image/jpeg', jpeg));
  }
  return out;
}
