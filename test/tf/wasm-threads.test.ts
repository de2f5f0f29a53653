/**
 * stages/tf/wasm-threads.ts: the threaded wasm build runs under Node with the requested number of
 * XNNPACK threads, the process still exits by itself, and training is bit-identical for 1 and 2
 * threads (the runner picks the count from how many stages run at once, so a cached result must
 * not depend on it).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execaNode } from 'execa';
import { describe, expect, it } from 'vitest';

const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'train-digest.mjs');

async function trainWith(
  threads: number,
  env: Record<string, string> = {},
): Promise<{ detail: string; digest: string }> {
  // A hard timeout: a pthread worker that kept Node alive would hang here rather than pass.
  const { stdout } = await execaNode(script, [String(threads)], { timeout: 120_000, env });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { detail: string; digest: string };
}

describe('threaded wasm under Node', () => {
  it('uses the requested threads and trains bit-identically with 1 and 2', async () => {
    const one = await trainWith(1);
    const two = await trainWith(2);
    expect(one.detail).toBe('wasm (simd, 1 thread)');
    expect(two.detail).toBe('wasm (simd, 2 threads)');
    expect(two.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(two.digest).toBe(one.digest);

    // Where the threaded build cannot start (here: its worker script cannot be written), the
    // package's own single-threaded build takes over, says why, and computes the same bytes.
    const fallback = await trainWith(2, { TMPDIR: '/dev/null/not-a-directory' });
    expect(fallback.detail).toMatch(/^wasm \(simd, 1 thread; threaded build unavailable: .*not-a-directory/);
    expect(fallback.digest).toBe(one.digest);
  }, 300_000);
});
