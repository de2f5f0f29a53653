// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts): the
// filter gradient of a depthwise convolution with channel multiplier 1 (MobileNet's depthwise
// layers), NHWC, as a job for the threads of kernels/pool.ts on the tfjs wasm backend's heap:
//   out[i, j, c] = Σ_{n, oy, ox} x[n, oy·sh + i − padTop, ox·sw + j − padLeft, c] · dy[n, oy, ox, c]
// (taps outside x count as zero). Each image's sum is formed on its own (one unit), then the
// images' sums are added in order (sumChunksJob), so a float32 sum runs over one image's
// positions, not the whole batch's, and the result does not depend on the thread count.

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
