/**
 * podium's pooled wasm training kernels (batch norm's statistics, input gradient, ReLU6's
 * gradient, the depthwise filter and input gradients: kernels/batch-norm.as.ts and depthwise-grad.as.ts on
 * the threads of kernels/pool.ts) give the same bytes with 1 and 2 threads, with the second
 * thread taking part. wasm-train-ops.test.ts checks their values against the tfjs ops.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execaNode } from 'execa';
import { describe, expect, it } from 'vitest';

const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'train-ops-digest.mjs');

interface Digests {
  detail: string;
  poolThreads: number;
  unitsByWorkers: number;
  results: Array<{ name: string; digest: string }>;
}

async function digestsWith(threads: number): Promise<Digests> {
  const { stdout } = await execaNode(script, [String(threads)], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Digests;
}

describe('batch norm, ReLU6 and depthwise gradient kernels on the threaded wasm backend', () => {
  it('give the same bytes with 1 and 2 threads', async () => {
    const one = await digestsWith(1);
    const two = await digestsWith(2);
    expect([one.detail, two.detail]).toEqual(['wasm (simd, 1 thread)', 'wasm (simd, 2 threads)']);
    expect([one.poolThreads, two.poolThreads]).toEqual([1, 2]);
    expect(one.unitsByWorkers).toBe(0);
    expect(two.unitsByWorkers).toBeGreaterThan(0);
    expect(two.results.length).toBe(36);
    expect(new Set(two.results.map((r) => r.digest)).size).toBe(36);
    for (const [i, r] of two.results.entries()) expect(r.digest, r.name).toBe(one.results[i]!.digest);
  }, 300_000);
});
