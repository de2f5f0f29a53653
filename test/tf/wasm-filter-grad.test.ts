/**
 * podium's Conv2DBackpropFilter kernel (stages/tf/kernels/filter-grad.as.ts on the threads of
 * kernels/pool.ts): on the threaded wasm backend it matches tfjs's cpu backend within float32
 * rounding and gives the same bytes with 1 and 2 threads, with the second thread taking part,
 * for every shape it has a path for (test/tf/fixtures/filter-grad-digest.mjs lists them).
 * wasm-gradients.test.ts covers the geometries (explicit pads, odd strides) on the
 * single-threaded build.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execaNode } from 'execa';
import { describe, expect, it } from 'vitest';

const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'filter-grad-digest.mjs');

interface Digests {
  detail: string;
  poolThreads: number;
  unitsByWorkers: number;
  results: Array<{ name: string; digest: string; relError: number }>;
}

async function filterGradsWith(threads: number): Promise<Digests> {
  const { stdout } = await execaNode(script, [String(threads)], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Digests;
}

describe('Conv2DBackpropFilter on the threaded wasm backend', () => {
  it('matches the cpu backend and gives the same bytes with 1 and 2 threads', async () => {
    const one = await filterGradsWith(1);
    const two = await filterGradsWith(2);
    expect(one.detail).toBe('wasm (simd, 1 thread)');
    expect(two.detail).toBe('wasm (simd, 2 threads)');
    expect([one.poolThreads, two.poolThreads]).toEqual([1, 2]);
    expect(one.unitsByWorkers).toBe(0);
    expect(two.unitsByWorkers).toBeGreaterThan(0);
    expect(two.results.length).toBe(8);
    for (const [i, r] of two.results.entries()) {
      // float32 sums of ≤ 4096 products in [-1, 1] against cpu's float64 ones
      expect(r.relError, r.name).toBeLessThan(2e-5);
      expect(r.digest, r.name).toBe(one.results[i]!.digest);
    }
  }, 300_000);
});
