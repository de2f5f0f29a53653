// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts):
// the pixel loops of the decode stage's resize. In plain JS they cost ~4 ns per byte (bounds
// checks on every typed-array access), more than libjpeg-turbo's whole decode of an intel6
// image; here the inner loops run without checks and 16 bytes at a time.
//
// Images are packed RGB u8 in this module's memory; the caller (../resize.ts) places them and
// the tap tables, so there is no allocator.

/**
 * Bilinear resize, OpenCV INTER_LINEAR conventions, in two passes through `tmp` (h × W × 3 16-bit
 * values): each output byte is out = (A·(256−t) + B·t + 2¹⁵) >> 16, where A and B are the
 * horizontally weighted values a·(256−s) + b·s of its upper and lower source rows.
 *
 * The horizontal pass works on the W × 3 bytes of an output row, 8 at a time. Per output byte k:
 * xi[k] (i32) the offset of its left source byte a in a row (3 × its left source pixel + its
 * channel; b is 3 further, or the same when w == 1), xw[k] (u16) its right weight s (0..256). Per
 * block j of 8 bytes (the last one may be short), the caller found where their 16 source bytes
 * lie: xb[2j], xb[2j+1] (i32) the row offsets of one or two 16-byte windows (the second −1 when
 * one window holds them all; the first −1 when two do not, or the block is short: then byte by
 * byte from xi and xw), and xm[2j], xm[2j+1] (16 bytes each) the swizzle masks that gather from
 * those windows the 8 left bytes into lanes 0–7 and the 8 right bytes into lanes 8–15 (index
 * 0x80, which gives 0, where the other window supplies the lane). A window may reach up to 15
 * bytes past the image, so the caller pads the source; the bytes read there are never selected.
 *
 * tmp holds A − 32640 (in −32640..32640, so an i16) for the vertical pass to do one signed
 * multiply-add per byte (i32x4.dot_i16x8_s): (A − 32640)·(256−t) + (B − 32640)·t is
 * A·(256−t) + B·t + 2¹⁵ − 2²³, so out is that sum >> 16 (arithmetic, in −128..127, which the
 * signed narrowings keep as they are) + 128, exactly.
 *
 * yi: per output row its upper source row; yw: its lower weight t.
 */
export function bilinear(src: usize, w: i32, h: i32, dst: usize, W: i32, H: i32, xi: usize, xw: usize, xb: usize, xm: usize, yi: usize, yw: usize, tmp: usize): void {
  const dx: usize = w == 1 ? 0 : 3;
  const rowIn = <usize>w * 3;
  const rowOut = <usize>W * 3;
  const rowTmp = rowOut * 2;
  const end = src + <usize>h * rowIn;
  // Block by block, down all the rows: the block's masks and weights stay in registers.
  for (let k: usize = 0; k < rowOut; k += 8) {
    const first = load<i32>(xb + k);
    const second = load<i32>(xb + k, 4);
    const o = tmp + (k << 1);
    if (first >= 0) {
      const m1 = v128.load(xm + (k << 2));
      const s = v128.load(xw + (k << 1));
      let p = src + <usize>first;
      let q = o;
      if (second < 0) {
        for (; p < end; p += rowIn, q += rowTmp) v128.store(q, horizontal(i8x16.swizzle(v128.load(p), m1), s));
      } else {
        const m2 = v128.load(xm + (k << 2), 16);
        const gap = <usize>(second - first);
        for (; p < end; p += rowIn, q += rowTmp) {
          v128.store(q, horizontal(v128.or(i8x16.swizzle(v128.load(p), m1), i8x16.swizzle(v128.load(p + gap), m2)), s));
        }
      }
    } else {
      const n = min<usize>(8, rowOut - k);
      for (let row = src, q = o; row < end; row += rowIn, q += rowTmp) {
        for (let j: usize = 0; j < n; j++) {
          const a = row + <usize>load<i32>(xi + ((k + j) << 2));
          const s = <i32>load<u16>(xw + ((k + j) << 1));
          store<u16>(q + (j << 1), <i32>load<u8>(a) * (256 - s) + <i32>load<u8>(a + dx) * s - 32640);
        }
      }
    }
  }
  const dy: usize = h == 1 ? 0 : rowTmp;
  for (let y: usize = 0; y < <usize>H; y++) {
    const r0 = tmp + <usize>load<i32>(yi + (y << 2)) * rowTmp;
    const r1 = r0 + dy;
    const t = load<i32>(yw + (y << 2));
    const u = 256 - t;
    const o = dst + y * rowOut;
    // (u, t) in each pair of 16-bit lanes, against (A, B) interleaved.
    const ut = i32x4.splat(u | (t << 16));
    let k: usize = 0;
    for (; k + 16 <= rowOut; k += 16) {
      const a0 = v128.load(r0 + (k << 1));
      const a1 = v128.load(r0 + (k << 1), 16);
      const b0 = v128.load(r1 + (k << 1));
      const b1 = v128.load(r1 + (k << 1), 16);
      const l0 = i32x4.shr_s(i32x4.dot_i16x8_s(i16x8.shuffle(a0, b0, 0, 8, 1, 9, 2, 10, 3, 11), ut), 16);
      const h0 = i32x4.shr_s(i32x4.dot_i16x8_s(i16x8.shuffle(a0, b0, 4, 12, 5, 13, 6, 14, 7, 15), ut), 16);
      const l1 = i32x4.shr_s(i32x4.dot_i16x8_s(i16x8.shuffle(a1, b1, 0, 8, 1, 9, 2, 10, 3, 11), ut), 16);
      const h1 = i32x4.shr_s(i32x4.dot_i16x8_s(i16x8.shuffle(a1, b1, 4, 12, 5, 13, 6, 14, 7, 15), ut), 16);
      // + 128 on each byte: flipping its top bit.
      v128.store(o + k, v128.xor(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(l0, h0), i16x8.narrow_i32x4_s(l1, h1)), i8x16.splat(-128)));
    }
    for (; k < rowOut; k++) {
      store<u8>(o + k, ((<i32>load<i16>(r0 + (k << 1)) * u + <i32>load<i16>(r1 + (k << 1)) * t) >> 16) + 128);
    }
  }
}

/**
 * The horizontal pass on 8 output bytes: a·(256−s) + b·s − 32640 for the left bytes a in lanes
 * 0–7 of `v` and the right ones b in lanes 8–15, computed as 256·a + (b − a)·s − 32640 in 16-bit
 * lanes, which wrap on the way but end on the same value (it fits in 16 bits).
 */
@inline function horizontal(v: v128, s: v128): v128 {
  const a = i16x8.extend_low_i8x16_u(v);
  const b = i16x8.extend_high_i8x16_u(v);
  return i16x8.add(i16x8.add(i16x8.shl(a, 8), i16x8.mul(i16x8.sub(b, a), s)), i16x8.splat(-32640));
}

/**
 * Box shrink by an integer factor k (below 64): each output pixel is the rounded mean of a k × k
 * block (w/k × h/k output, remainders dropped). The first step of a large downscale, as libvips'
 * shrink and OpenCV's INTER_AREA do: every source pixel counts, so there is no aliasing, and
 * the bilinear step after it only covers a factor below 2. `acc` holds one row of u32 column
 * sums (w × 3 × 4 bytes).
 */
export function boxShrink(src: usize, w: i32, h: i32, k: i32, dst: usize, acc: usize): void {
  const W = <usize>(w / k);
  const H = <usize>(h / k);
  const K = <usize>k;
  const rowIn = <usize>w * 3;
  const used = W * K * 3;
  // Rounded division by k² as a multiply and shift: exact for sums below 2³² / k², i.e. k < 64.
  const area = <u64>(k * k);
  const inverse: u64 = ((<u64>1 << 32) + area - 1) / area;
  const half = <u64>(k * k / 2);
  for (let y: usize = 0; y < H; y++) {
    const top = src + y * K * rowIn;
    // Column sums over the block's k rows, 16 bytes at a time, kept in registers.
    let i: usize = 0;
    for (; i + 16 <= used; i += 16) {
      let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
      let p = top + i;
      for (let r: usize = 0; r < K; r++) {
        const v = v128.load(p);
        const lo = i16x8.extend_low_i8x16_u(v);
        const hi = i16x8.extend_high_i8x16_u(v);
        s0 = i32x4.add(s0, i32x4.extend_low_i16x8_u(lo));
        s1 = i32x4.add(s1, i32x4.extend_high_i16x8_u(lo));
        s2 = i32x4.add(s2, i32x4.extend_low_i16x8_u(hi));
        s3 = i32x4.add(s3, i32x4.extend_high_i16x8_u(hi));
        p += rowIn;
      }
      const q = acc + (i << 2);
      v128.store(q, s0);
      v128.store(q, s1, 16);
      v128.store(q, s2, 32);
      v128.store(q, s3, 48);
    }
    for (; i < used; i++) {
      let sum: u32 = 0;
      for (let r: usize = 0; r < K; r++) sum += <u32>load<u8>(top + r * rowIn + i);
      store<u32>(acc + (i << 2), sum);
    }
    // Then k neighbouring pixels per output pixel, channel by channel.
    const o = dst + y * W * 3;
    let p = acc;
    for (let x: usize = 0; x < W; x++) {
      let r: u32 = 0, g: u32 = 0, b: u32 = 0;
      for (let j: usize = 0; j < K; j++) {
        r += load<u32>(p);
        g += load<u32>(p, 4);
        b += load<u32>(p, 8);
        p += 12;
      }
      store<u8>(o + x * 3, <u32>(((<u64>r + half) * inverse) >> 32));
      store<u8>(o + x * 3, <u32>(((<u64>g + half) * inverse) >> 32), 1);
      store<u8>(o + x * 3, <u32>(((<u64>b + half) * inverse) >> 32), 2);
    }
  }
}
