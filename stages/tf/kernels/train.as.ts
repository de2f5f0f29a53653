// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts):
// training loops that no composition of tfjs-backend-wasm's kernels does well. This module has
// no memory of its own: it imports the wasm backend's heap (../wasm-kernels.ts) and works on
// tensors in place, at the offsets the backend gives them. It must not have data segments
// (they would be written into the backend's heap): no strings, no static arrays.

/**
 * Filter gradient of a depthwise convolution with channel multiplier 1, NHWC:
 *   out[i, j, c] = Σ_{n, oy, ox} x[n, oy·sh + i − padTop, ox·sw + j − padLeft, c] · dy[n, oy, ox, c]
 * (taps outside x count as zero). Each image's sum is formed in `scratch` (kh·kw·C floats) and
 * then added to `out`, so a float32 sum runs over one image's positions, not the whole batch's.
 * The order of every sum is fixed, so the result does not depend on anything but the inputs.
 */
export function depthwiseFilterGrad(
  x: usize, dy: usize, out: usize, scratch: usize,
  N: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32,
): void {
  const taps = <usize>(kh * kw * C) << 2;
  const rowBytes = <usize>C << 2;
  const vecBytes = <usize>(C & ~3) << 2;
  memory.fill(out, 0, taps);
  for (let n = 0; n < N; n++) {
    memory.fill(scratch, 0, taps);
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
            const acc = scratch + <usize>(i * kw + j) * rowBytes;
            let b: usize = 0;
            for (; b < vecBytes; b += 16) {
              v128.store(acc + b, f32x4.add(v128.load(acc + b), f32x4.mul(v128.load(xp + b), v128.load(d + b))));
            }
            for (; b < rowBytes; b += 4) store<f32>(acc + b, load<f32>(acc + b) + load<f32>(xp + b) * load<f32>(d + b));
          }
        }
      }
    }
    let b: usize = 0;
    for (; b + 16 <= taps; b += 16) v128.store(out + b, f32x4.add(v128.load(out + b), v128.load(scratch + b)));
    for (; b < taps; b += 4) store<f32>(out + b, load<f32>(out + b) + load<f32>(scratch + b));
  }
}

/**
 * One SGD-with-momentum update, fused, into new buffers (the inputs stay as they were):
 *   g′ = g + decay·w (when useDecay), buf′ = momentum·buf + g′, w′ = w − lr·buf′.
 * Each product and sum is rounded to float32 in the same order as the tfjs ops it replaces
 * (optimizer.ts), and wasm has no fused multiply-add, so the results are bit for bit the same;
 * what it saves is ~7 kernel calls per weight per step (1,800 for MobileNetV2).
 */
export function sgdMomentum(w: usize, g: usize, buf: usize, wOut: usize, bufOut: usize, n: i32, lr: f32, momentum: f32, decay: f32, useDecay: i32): void {
  const bytes = <usize>n << 2;
  const vec = <usize>(n & ~3) << 2;
  const LR = f32x4.splat(lr);
  const M = f32x4.splat(momentum);
  const D = f32x4.splat(decay);
  let b: usize = 0;
  if (useDecay) {
    for (; b < vec; b += 16) {
      const wv = v128.load(w + b);
      const gv = f32x4.add(v128.load(g + b), f32x4.mul(wv, D));
      const bv = f32x4.add(f32x4.mul(v128.load(buf + b), M), gv);
      v128.store(bufOut + b, bv);
      v128.store(wOut + b, f32x4.sub(wv, f32x4.mul(bv, LR)));
    }
  } else {
    for (; b < vec; b += 16) {
      const bv = f32x4.add(f32x4.mul(v128.load(buf + b), M), v128.load(g + b));
      v128.store(bufOut + b, bv);
      v128.store(wOut + b, f32x4.sub(v128.load(w + b), f32x4.mul(bv, LR)));
    }
  }
  for (; b < bytes; b += 4) {
    const wi = load<f32>(w + b);
    const gi = useDecay ? load<f32>(g + b) + wi * decay : load<f32>(g + b);
    const bi = load<f32>(buf + b) * momentum + gi;
    store<f32>(bufOut + b, bi);
    store<f32>(wOut + b, wi - bi * lr);
  }
}

/**
 * ReLU6's gradient in one pass: out = dy · step(y · (max − y)), with the product, difference
 * and comparison in float32 exactly as tfjs computes them (so also dy·0 = −0 for negative dy).
 */
export function relu6Grad(dy: usize, y: usize, out: usize, n: i32, maxValue: f32): void {
  const bytes = <usize>n << 2;
  const vec = <usize>(n & ~3) << 2;
  const M = f32x4.splat(maxValue);
  const Z = f32x4.splat(0);
  const ONE = f32x4.splat(1);
  let b: usize = 0;
  for (; b < vec; b += 16) {
    const yv = v128.load(y + b);
    const pass = f32x4.gt(f32x4.mul(yv, f32x4.sub(M, yv)), Z);
    v128.store(out + b, f32x4.mul(v128.load(dy + b), v128.and(pass, ONE)));
  }
  for (; b < bytes; b += 4) {
    const yi = load<f32>(y + b);
    store<f32>(out + b, load<f32>(dy + b) * (yi * (maxValue - yi) > 0 ? <f32>1 : <f32>0));
  }
}

/**
 * Batch-norm statistics of x [N, rows, C] (NHWC with H·W = rows): per channel the mean and the
 * biased variance, two-pass (Σ(x − mean)², exact even when |mean| ≫ std). Each image is summed
 * in `scratch` (C floats) on its own, then the images are added in order.
 */
export function channelMeanVariance(x: usize, mean: usize, variance: usize, scratch: usize, N: i32, rows: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  const vec = <usize>(C & ~3) << 2;
  const count = <f32>N * <f32>rows;
  memory.fill(mean, 0, rowBytes);
  memory.fill(variance, 0, rowBytes);
  let xr = x;
  for (let n = 0; n < N; n++) {
    memory.fill(scratch, 0, rowBytes);
    for (let r = 0; r < rows; r++, xr += rowBytes) {
      let b: usize = 0;
      for (; b < vec; b += 16) v128.store(scratch + b, f32x4.add(v128.load(scratch + b), v128.load(xr + b)));
      for (; b < rowBytes; b += 4) store<f32>(scratch + b, load<f32>(scratch + b) + load<f32>(xr + b));
    }
    for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(mean + b, load<f32>(mean + b) + load<f32>(scratch + b));
  }
  for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(mean + b, load<f32>(mean + b) / count);
  xr = x;
  for (let n = 0; n < N; n++) {
    memory.fill(scratch, 0, rowBytes);
    for (let r = 0; r < rows; r++, xr += rowBytes) {
      let b: usize = 0;
      for (; b < vec; b += 16) {
        const d = f32x4.sub(v128.load(xr + b), v128.load(mean + b));
        v128.store(scratch + b, f32x4.add(v128.load(scratch + b), f32x4.mul(d, d)));
      }
      for (; b < rowBytes; b += 4) {
        const d = load<f32>(xr + b) - load<f32>(mean + b);
        store<f32>(scratch + b, load<f32>(scratch + b) + d * d);
      }
    }
    for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(variance + b, load<f32>(variance + b) + load<f32>(scratch + b));
  }
  for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(variance + b, load<f32>(variance + b) / count);
}

/**
 * What batch norm's gradient needs of dy and x [N, rows, C], in one pass: per channel the means
 * of dy and of dy·x. Summed per image in `scratch` (2·C floats), then over the images in order.
 */
export function channelMeansDyDyX(dy: usize, x: usize, meanDy: usize, meanDyX: usize, scratch: usize, N: i32, rows: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  const vec = <usize>(C & ~3) << 2;
  const count = <f32>N * <f32>rows;
  const s2 = scratch + rowBytes;
  memory.fill(meanDy, 0, rowBytes);
  memory.fill(meanDyX, 0, rowBytes);
  let dr = dy;
  let xr = x;
  for (let n = 0; n < N; n++) {
    memory.fill(scratch, 0, rowBytes << 1);
    for (let r = 0; r < rows; r++, dr += rowBytes, xr += rowBytes) {
      let b: usize = 0;
      for (; b < vec; b += 16) {
        const d = v128.load(dr + b);
        v128.store(scratch + b, f32x4.add(v128.load(scratch + b), d));
        v128.store(s2 + b, f32x4.add(v128.load(s2 + b), f32x4.mul(d, v128.load(xr + b))));
      }
      for (; b < rowBytes; b += 4) {
        const d = load<f32>(dr + b);
        store<f32>(scratch + b, load<f32>(scratch + b) + d);
        store<f32>(s2 + b, load<f32>(s2 + b) + d * load<f32>(xr + b));
      }
    }
    for (let b: usize = 0; b < rowBytes; b += 4) {
      store<f32>(meanDy + b, load<f32>(meanDy + b) + load<f32>(scratch + b));
      store<f32>(meanDyX + b, load<f32>(meanDyX + b) + load<f32>(s2 + b));
    }
  }
  for (let b: usize = 0; b < rowBytes; b += 4) {
    store<f32>(meanDy + b, load<f32>(meanDy + b) / count);
    store<f32>(meanDyX + b, load<f32>(meanDyX + b) / count);
  }
}
