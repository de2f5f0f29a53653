// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts):
// training loops that no composition of tfjs-backend-wasm's kernels does well. This module has
// no memory of its own: it imports the wasm backend's heap (../wasm-kernels.ts) and works on
// tensors in place, at the offsets the backend gives them. It must not have data segments
// (they would be written into the backend's heap): no strings, no static arrays.

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
