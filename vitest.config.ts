import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The webgpu suite runs on its own (npm run test:gpu, vitest.gpu.config.ts): minutes on software Vulkan.
    // So does the SLURM suite (vitest.slurm.config.ts): it starts real clusters, as root.
    exclude: ['test/gpu/**', 'test/slurm/**', 'node_modules/**'],
    // Stages spawn real processes and open real LMDB environments; 2-core CI machines are slow.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
