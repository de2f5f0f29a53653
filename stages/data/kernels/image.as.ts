// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts):
// the pixel loops of the decode stage's resize. In plain JS they cost ~4 ns per byte (bounds
// checks on every typed-array access), more than libjpeg-turbo's whole decode of an intel6
// image; here the inner loops run without checks and 16 bytes at a time.
//
// Images are packed RGB u8 in this module's memory; the caller (../resize.ts) places them and
// the tap tables, so there is no allocator.

/**
 * Bilinear resize, OpenCV INTER_LINEAR conventions, in two passes through `tmp` (u16, h × W × 3).
 * xi: per output column the byte offset (x × 3) of its left source pixel; xw: its right weight
 * (0..256). yi: per output row its upper source row; yw: its lower weight. The rounding is exact:
 * out = (rowA·(256−t) + rowB·t + 2¹⁵) >> 16 on the horizontally weighted rows.
 */
export function bilinear(src: usize, w: i32, h: i32, dst: usize, W: i32, H: i32, xi: usize, xw: usize, yi: usize, yw: usize, tmp: usize): void {
  const dx: usize = w == 1 ? 0 : 3;
  const rowIn = <usize>w * 3;
  const rowOut = <usize>W * 3;
  for (let y: usize = 0; y < <usize>h; y++) {
    const row = src + y * rowIn;
    let o = tmp + y * rowOut * 2;
    for (let x: usize = 0; x < <usize>W; x++) {
      const a = row + <usize>load<i32>(xi + (x << 2));
      const t = load<i32>(xw + (x << 2));
      const u = 256 - t;
      const b = a + dx;
      store<u16>(o, <i32>load<u8>(a) * u + <i32>load<u8>(b) * t);
      store<u16>(o, <i32>load<u8>(a, 1) * u + <i32>load<u8>(b, 1) * t, 2);
      store<u16>(o, <i32>load<u8>(a, 2) * u + <i32>load<u8>(b, 2) * t, 4);
      o += 6;
    }
  }
  const dy: usize = h == 1 ? 0 : rowOut * 2;
  const R = i32x4.splat(32768);
  for (let y: usize = 0; y < <usize>H; y++) {
    const r0 = tmp + <usize>load<i32>(yi + (y << 2)) * rowOut * 2;
    const r1 = r0 + dy;
    const t = load<i32>(yw + (y << 2));
    const u = 256 - t;
    const o = dst + y * rowOut;
    const U = i16x8.splat(<i16>u);
    const T = i16x8.splat(<i16>t);
    let k: usize = 0;
    for (; k + 16 <= rowOut; k += 16) {
      const a0 = v128.load(r0 + (k << 1));
      const a1 = v128.load(r0 + (k << 1), 16);
      const b0 = v128.load(r1 + (k << 1));
      const b1 = v128.load(r1 + (k << 1), 16);
      const l0 = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.extmul_low_i16x8_u(a0, U), i32x4.extmul_low_i16x8_u(b0, T)), R), 16);
      const h0 = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.extmul_high_i16x8_u(a0, U), i32x4.extmul_high_i16x8_u(b0, T)), R), 16);
      const l1 = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.extmul_low_i16x8_u(a1, U), i32x4.extmul_low_i16x8_u(b1, T)), R), 16);
      const h1 = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.extmul_high_i16x8_u(a1, U), i32x4.extmul_high_i16x8_u(b1, T)), R), 16);
      v128.store(o + k, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(l0, h0), i16x8.narrow_i32x4_u(l1, h1)));
    }
    for (; k < rowOut; k++) {
      store<u8>(o + k, (<u32>(<i32>load<u16>(r0 + (k << 1)) * u + <i32>load<u16>(r1 + (k << 1)) * t) + 32768) >>> 16);
    }
  }
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
