// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts):
// gradient loops that no composition of tfjs-backend-wasm's kernels does well. This module has
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
