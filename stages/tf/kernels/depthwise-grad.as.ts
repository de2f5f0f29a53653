// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts): the
// gradients of a depthwise convolution with channel multiplier 1 (MobileNet's depthwise layers),
// NHWC, as jobs for the threads of kernels/pool.ts on the tfjs wasm backend's heap. Each unit
// writes outputs no other unit writes, each sum in one fixed order, so the bytes do not depend on
// the thread count.
//
// The filter gradient:
//   out[i, j, c] = Σ_{n, oy, ox} x[n, oy·sh + i − padTop, ox·sw + j − padLeft, c] · dy[n, oy, ox, c]
// (taps outside x count as zero). Each image's sum is formed on its own (one unit), then the
// images' sums are added in order (sumChunksJob), so a float32 sum runs over one image's
// positions, not the whole batch's.

/**
 * Unit u = image u: parts[u·stride + (i·kw + j)·C + c] = its sum over the image's positions, in
 * order, from +0 (so it is never −0, and adding the images from the first one's sum is the same
 * as adding them to a zero).
 */
export function depthwiseFilterGradJob(
  x: usize, dy: usize, parts: usize, stride: i32,
  H: i32, W: i32, C: i32, OH: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32, u: i32, thread: i32,
): void {
  const n = u;
  const rowBytes = <usize>C << 2;
  const vecBytes = <usize>(C & ~3) << 2;
  const acc0 = parts + (<usize>n * <usize>stride << 2);
  memory.fill(acc0, 0, <usize>(kh * kw) * rowBytes);
  for (let oy = 0; oy < OH; oy++) {
    for (let ox = 0; ox < OW; ox++) {
      const d = dy + (<usize>((n * OH + oy) * OW + ox) << 2) * <usize>C;
      for (let i = 0; i < kh; i++) {
        const iy = oy * sh + i - padTop;
        if (iy < 0 || iy >= H) continue;
        for (let j = 0; j < kw; j++) {
          const ix = ox * sw + j - padLeft;
          if (ix < 0 || ix >= W) continue;
          const xp = x + (<usize>((n * H + iy) * W + ix) << 2) * <usize>C;
          const acc = acc0 + <usize>(i * kw + j) * rowBytes;
          let b: usize = 0;
          for (; b < vecBytes; b += 16) {
            v128.store(acc + b, f32x4.add(v128.load(acc + b), f32x4.mul(v128.load(xp + b), v128.load(d + b))));
          }
          for (; b < rowBytes; b += 4) store<f32>(acc + b, load<f32>(acc + b) + load<f32>(xp + b) * load<f32>(d + b));
        }
      }
    }
  }
}

/** Taps of one kernel at most (the tap list of each thread's scratch holds this many pairs). */
export const MAX_TAPS: i32 = 64;

/**
 * The input gradient of the same convolution, gathered: for each pixel of dx, the sum over the
 * taps (i, j) in row-major order that some output position reads it through,
 *   dx[n, y, x, c] = Σ dy[n, (y + padTop − i)/sh, (x + padLeft − j)/sw, c] · w[i, j, c]
 * (only where both quotients are whole and inside dy), from +0. Unit u = row u of dx, over all
 * images (u = n·H + y): every unit writes its own row, so the bytes do not depend on the threads.
 * Why not a convolution of zero-stuffed dy (what tfjs does): for stride 2 that reads and multiplies
 * four times the data, three quarters of it zeros, and the stuffing and padding are copies of
 * their own (5–6× the forward pass for stride 2, 2× for stride 1, on our machine).
 * Each pixel's taps are listed once (byte offsets into dy's image and w, in `scratch`: this
 * thread's 2·MAX_TAPS int32 at scratch + thread·2·MAX_TAPS·4), then channels go in blocks of 16
 * (four vectors held in registers), then 4, then 1. In 3×3 stride-1 layers, runs of 4 pixels
 * away from the edges take quad3x3 instead, which loads each dy vector once for the 4 (at 224 px
 * it halved the 112×112×32 layer's time, to its forward pass's; the narrower layers moved within
 * the noise: `node bench/depthwise-gradients.mjs --size 224`). Same sums, same order.
 */
export function depthwiseInputGradJob(
  dy: usize, w: usize, dx: usize, scratch: usize,
  H: i32, W: i32, C: i32, OH: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32, u: i32, thread: i32,
): void {
  const n = u / H;
  const y = u - n * H;
  const rowBytes = <usize>C << 2;
  const dyImage = dy + <usize>n * <usize>OH * <usize>OW * rowBytes;
  const taps = scratch + (<usize>thread * <usize>MAX_TAPS << 3);
  // 3×3 stride 1 (most of MobileNet's depthwise layers): runs of 4 pixels whose taps all fall
  // inside dy's columns take `quad3x3` for their channels in whole vectors.
  const quads = kh == 3 && kw == 3 && sh == 1 && sw == 1;
  const xFirst = max<i32>(0, 2 - padLeft); // the first pixel whose 3 columns lie inside dy
  const xEnd = min<i32>(W, OW - padLeft); // and the end of such pixels
  const vecBytes = <usize>(C & ~3) << 2;
  let out = dx + <usize>u * <usize>W * rowBytes;
  for (let x = 0; x < W; x++, out += rowBytes) {
    if (quads && x >= xFirst && x + 4 <= xEnd) {
      const column = dyImage + <usize>(x + padLeft - 2) * rowBytes; // the leftmost column the 4 pixels read
      quad3x3(column, w, out, y + padTop, OH, OW, rowBytes, vecBytes);
      // The channels after the last whole vector, pixel by pixel (as below).
      for (let k = 0; k < 4 && vecBytes < rowBytes; k++) {
        const count = listTaps(taps, x + k, y, OH, OW, kh, kw, sh, sw, padTop, padLeft, rowBytes);
        const o = out + <usize>k * rowBytes;
        for (let c = C & ~3; c < C; c++) gather1(dyImage, w, o + (<usize>c << 2), taps, count, <usize>c << 2);
      }
      x += 3;
      out += rowBytes * 3;
      continue;
    }
    const count = listTaps(taps, x, y, OH, OW, kh, kw, sh, sw, padTop, padLeft, rowBytes);
    let c: i32 = 0;
    for (; c + 16 <= C; c += 16) gather16(dyImage, w, out + (<usize>c << 2), taps, count, <usize>c << 2);
    for (; c + 4 <= C; c += 4) gather4(dyImage, w, out + (<usize>c << 2), taps, count, <usize>c << 2);
    for (; c < C; c++) gather1(dyImage, w, out + (<usize>c << 2), taps, count, <usize>c << 2);
  }
}

/**
 * Channels [0, vecBytes/4) (whole vectors) of 4 neighbouring pixels of dx (their outputs at
 * out + k·rowBytes), 3×3 stride 1, every column inside dy: `column` is dy's row 0 at the leftmost
 * column the pixels read (pixel k, tap j reads column k − j + 2 of the six), `t` = y + padTop (tap
 * row i reads dy's row t − i, skipped where outside). Each pixel's sum runs over its taps in
 * row-major order from +0, as gather16's: the same bits. Per tap row the six dy vectors and three
 * weights are loaded once for the 4 pixels (9 loads for 12 products, against 24 in gather16).
 */
function quad3x3(column: usize, w: usize, out: usize, t: i32, OH: i32, OW: i32, rowBytes: usize, vecBytes: usize): void {
  const dyRow = <usize>OW * rowBytes;
  // Tap row i reads dy's row t − i: its first column's address, or 0 where outside dy.
  const d0: usize = t >= 0 && t < OH ? column + <usize>t * dyRow : 0;
  const d1: usize = t >= 1 && t - 1 < OH ? column + <usize>(t - 1) * dyRow : 0;
  const d2: usize = t >= 2 && t - 2 < OH ? column + <usize>(t - 2) * dyRow : 0;
  const r3 = rowBytes * 3;
  for (let at: usize = 0; at < vecBytes; at += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i = 0; i < 3; i++) {
      const row = i == 0 ? d0 : i == 1 ? d1 : d2;
      if (row == 0) continue;
      const d = row + at;
      const e0 = v128.load(d);
      const e1 = v128.load(d + rowBytes);
      const e2 = v128.load(d + rowBytes * 2);
      const e3 = v128.load(d + r3);
      const e4 = v128.load(d + rowBytes * 4);
      const e5 = v128.load(d + rowBytes * 5);
      const f = w + <usize>i * r3 + at;
      const w0 = v128.load(f);
      const w1 = v128.load(f + rowBytes);
      const w2 = v128.load(f + rowBytes * 2);
      // Tap j = 0: pixel k reads column k + 2; j = 1: k + 1; j = 2: k.
      a0 = f32x4.add(a0, f32x4.mul(e2, w0));
      a1 = f32x4.add(a1, f32x4.mul(e3, w0));
      a2 = f32x4.add(a2, f32x4.mul(e4, w0));
      a3 = f32x4.add(a3, f32x4.mul(e5, w0));
      a0 = f32x4.add(a0, f32x4.mul(e1, w1));
      a1 = f32x4.add(a1, f32x4.mul(e2, w1));
      a2 = f32x4.add(a2, f32x4.mul(e3, w1));
      a3 = f32x4.add(a3, f32x4.mul(e4, w1));
      a0 = f32x4.add(a0, f32x4.mul(e0, w2));
      a1 = f32x4.add(a1, f32x4.mul(e1, w2));
      a2 = f32x4.add(a2, f32x4.mul(e2, w2));
      a3 = f32x4.add(a3, f32x4.mul(e3, w2));
    }
    const o = out + at;
    v128.store(o, a0);
    v128.store(o + rowBytes, a1);
    v128.store(o + rowBytes * 2, a2);
    v128.store(o + r3, a3);
  }
}

/**
 * Pixel (x, y)'s taps, in row-major order, as (byte offset into dy's image, byte offset into w)
 * pairs of 32-bit words at `taps`; returns how many.
 */
function listTaps(
  taps: usize, x: i32, y: i32, OH: i32, OW: i32, kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32, rowBytes: usize,
): i32 {
  let count: i32 = 0;
  for (let i = 0; i < kh; i++) {
    const oy = source(y, i, padTop, sh, OH);
    if (oy < 0) continue;
    for (let j = 0; j < kw; j++) {
      const ox = source(x, j, padLeft, sw, OW);
      if (ox < 0) continue;
      const entry = taps + (<usize>count << 3);
      store<u32>(entry, <u32>(<usize>(oy * OW + ox) * rowBytes));
      store<u32>(entry, <u32>(<usize>(i * kw + j) * rowBytes), 4);
      count++;
    }
  }
  return count;
}

/** The output row that tap row i reads input row y through, or −1 (and likewise for columns). */
// @ts-ignore: decorator
@inline
function source(y: i32, i: i32, pad: i32, stride: i32, size: i32): i32 {
  const t = y + pad - i;
  if (t < 0) return -1;
  const o = stride == 1 ? t : stride == 2 ? t >> 1 : t / stride;
  return o * stride == t && o < size ? o : -1;
}

function gather16(dy: usize, w: usize, out: usize, taps: usize, count: i32, at: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let k = 0; k < count; k++) {
    const entry = taps + (<usize>k << 3);
    const d = dy + <usize>load<u32>(entry) + at;
    const f = w + <usize>load<u32>(entry, 4) + at;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(d), v128.load(f)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(d + 16), v128.load(f + 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(d + 32), v128.load(f + 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(d + 48), v128.load(f + 48)));
  }
  v128.store(out, a0);
  v128.store(out + 16, a1);
  v128.store(out + 32, a2);
  v128.store(out + 48, a3);
}

function gather4(dy: usize, w: usize, out: usize, taps: usize, count: i32, at: usize): void {
  let a0 = f32x4.splat(0);
  for (let k = 0; k < count; k++) {
    const entry = taps + (<usize>k << 3);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(dy + <usize>load<u32>(entry) + at), v128.load(w + <usize>load<u32>(entry, 4) + at)));
  }
  v128.store(out, a0);
}

function gather1(dy: usize, w: usize, out: usize, taps: usize, count: i32, at: usize): void {
  let a0: f32 = 0;
  for (let k = 0; k < count; k++) {
    const entry = taps + (<usize>k << 3);
    a0 += load<f32>(dy + <usize>load<u32>(entry) + at) * load<f32>(w + <usize>load<u32>(entry, 4) + at);
  }
  store<f32>(out, a0);
}
