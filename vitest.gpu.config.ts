// `npm run test:gpu`: the webgpu tests only (test/gpu/), on whatever adapter Dawn finds — in CI
// the software Vulkan of .ci/setup-vulkan.sh. Kept out of `npm test` (vitest.config.ts): on
// lavapipe they take minutes, and `npm test` must pass on machines without any Vulkan.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Convenience: when .ci/setup-vulkan.sh has put lavapipe in its default place and the caller
// exported nothing, use it. Set here, in the main process, so that the forked test workers and the
// CLI processes they start inherit it (LD_LIBRARY_PATH is read when a process starts).
const icd = resolve('.podium/vulkan/lvp_icd.json');
if (process.env.VK_DRIVER_FILES === undefined && existsSync(icd)) {
  process.env.VK_DRIVER_FILES = icd;
  const lib = resolve('.podium/vulkan/root/usr/lib/x86_64-linux-gnu');
  process.env.LD_LIBRARY_PATH = [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
}

export default defineConfig({
  test: {
    include: ['test/gpu/**/*.test.ts'],
    globalSetup: ['test/gpu/global-setup.ts'],
    // Software Vulkan is slow, and two test files each compiling shaders on 2 shared cores
    // only fight: one file at a time.
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 240_000,
    pool: 'forks',
  },
});
