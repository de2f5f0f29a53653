// Colour jitter: MXNet's HSL shift, applied in place to each output row right after the sampler
// writes it (see RowColour). Units and the deliberate differences from MXNet are in ./index.ts.

/**
 * Optional per-row colour pass. Applying it row by row, right after the row is written, keeps the
 * row in L1 cache, so the second pass costs arithmetic only, not another trip through memory.
 */
export interface RowColour {
  dHue: number;
  dSat: number;
  dLight: number;
}

/** Per hue sector 0–5 (red → yellow → green → cyan → blue → magenta): the channel at the top. */
const HI_CHANNEL = Int8Array.of(0, 1, 1, 2, 2, 0);
/** Per hue sector: the channel at the bottom (m); the remaining channel is the one in between. */
const LOW_CHANNEL = Int8Array.of(2, 2, 0, 0, 1, 1);

/**
 * MXNet-style HSL shift, in place on n RGB pixels in [0,1]: one offset per channel for the whole
 * image. Hue (in sixths of a turn) wraps; saturation and lightness are added and clamped to [0,1].
 * Achromatic pixels keep saturation 0 so greys stay grey (see the header of ./index.ts).
 */
export function jitterHsl(out: Float32Array, off: number, n: number, dHue: number, dSat: number, dLight: number): void {
  // Normalise the hue shift into [0,6) once so the per-pixel wrap is two compares, no modulo.
  let dh = dHue % 6;
  if (dh < 0) dh += 6;
  if (dh >= 6) dh = 0; // −1e-17 % 6 + 6 rounds to 6
  const end = off + n * 3;
  for (let o = off; o < end; o += 3) {
    const r = out[o]!;
    const g = out[o + 1]!;
    const b = out[o + 2]!;
    // One comparison tree yields max, min and the hexagonal hue (base sector + signed numerator):
    // fewer, and more predictable, branches than separate max/min/which-is-max chains.
    let max: number;
    let min: number;
    let base: number;
    let num: number;
    if (r >= g) {
      if (g >= b) {
        max = r;
        min = b;
        base = 0;
        num = g - b;
      } // r ≥ g ≥ b
      else if (r >= b) {
        max = r;
        min = g;
        base = 6;
        num = g - b;
      } // r ≥ b > g (num < 0: hue in (5, 6))
      else {
        max = b;
        min = g;
        base = 4;
        num = r - g;
      } // b > r ≥ g
    } else if (r >= b) {
      max = g;
      min = b;
      base = 2;
      num = b - r;
    } // g > r ≥ b
    else if (g >= b) {
      max = g;
      min = r;
      base = 2;
      num = b - r;
    } // g ≥ b > r
    else {
      max = b;
      min = r;
      base = 4;
      num = r - g;
    } // b > g > r
    const sum = max + min;
    let l = sum * 0.5 + dLight;
    if (l < 0) l = 0;
    else if (l > 1) l = 1;
    const chroma = max - min;
    if (chroma <= 0) {
      out[o] = l;
      out[o + 1] = l;
      out[o + 2] = l;
      continue;
    }
    // S = chroma / (1 − |2L − 1|) = chroma / (1 − |sum − 1|): one division, no L < 0.5 branch.
    let s = chroma / (1 - Math.abs(sum - 1)) + dSat;
    if (s < 0) s = 0;
    else if (s > 1) s = 1;
    let hue = base + num / chroma + dh; // in [0, 12)
    if (hue >= 6) hue -= 6;
    if (hue >= 6) hue -= 6;
    // HSL → RGB via chroma C, offset m = L − C/2, and the rising/falling edge of the sector.
    const cc = (1 - Math.abs(2 * l - 1)) * s;
    // m ≥ 0 mathematically but can round to −1e-17, which float32 keeps; the top end cannot leave
    // [0,1] visibly (1 + 1e-16 rounds to 1 in float32), so only the bottom needs a clamp.
    let m = l - cc * 0.5;
    if (m < 0) m = 0;
    const sector = hue | 0;
    const frac = hue - sector;
    const hi = cc + m;
    const up = cc * frac + m;
    const down = cc * (1 - frac) + m;
    // In each sixth of the hue circle one channel holds hi, one holds m, and the third rises (even
    // sectors) or falls (odd ones): two table reads instead of a six-way switch of writes.
    const hiChannel = HI_CHANNEL[sector]!;
    const lowChannel = LOW_CHANNEL[sector]!;
    out[o + hiChannel] = hi;
    out[o + lowChannel] = m;
    out[o + 3 - hiChannel - lowChannel] = sector & 1 ? down : up;
  }
}
