// finetune's `workers` param and the backends it applies to. Kept apart from data-parallel.ts,
// which imports TensorFlow.js: the registry (and its `check` at analysis) must load without it.

/** The most replicas a run may have. */
export const MAX_WORKERS = 8;

/** Backends that can run data-parallel replicas: the CPU ones, whose threads are divided among them. */
export const DATA_PARALLEL_BACKENDS: readonly string[] = ['wasm', 'cpu'];

// No `default`: ajv would write it into every finetune's params, so into every key; left out,
// the keys of pipelines that do not use it stay what they were.
export const workersSchema = {
  type: 'integer',
  minimum: 1,
  maximum: MAX_WORKERS,
  description:
    "Data-parallel replicas of one training run on a CPU backend (wasm, cpu); 1 when left out. Each step's batch is split among them and the mean gradient applied once; results depend on it (batch normalization uses each shard's own statistics). The stage's threads are divided among the replicas.",
} as const;

/** The line a user sees when `workers` > 1 meets a backend that cannot run replicas. */
export function workersBackendProblem(workers: number, backend: string, shownAs = backend): string | undefined {
  if (workers <= 1 || DATA_PARALLEL_BACKENDS.includes(backend)) return undefined;
  return `workers ${workers}: data-parallel replicas run on the CPU backends (${DATA_PARALLEL_BACKENDS.join(', ')}), not ${shownAs}; leave workers out (or 1) on this backend`;
}
