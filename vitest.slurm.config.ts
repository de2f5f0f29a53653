import { defineConfig } from 'vitest/config';

// The SLURM suite (test/slurm): each file starts its own one-node cluster on its own port, as
// root; run apart from `npm test` (npx vitest run --config vitest.slurm.config.ts, .ci/run).
export default defineConfig({
  test: {
    include: ['test/slurm/**/*.test.ts'],
    // A time-limit job needs SLURM's minute granularity plus its 30 s enforcement period.
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One cluster at a time: they share the 2-core machine with the jobs they run.
    fileParallelism: false,
  },
});
