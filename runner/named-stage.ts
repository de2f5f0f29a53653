// The one stage `podium show` and `podium cat` name, read from the cache without running anything:
// its state, and the record they show — the current one, or when the stage is stale the one its
// lock entry names (if still cached).
import type { StageRecord, Store } from '../cache/store.js';
import type { Pipeline } from './analyze.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { resolveIds } from './plan.js';
import { pipelineState, type StageState } from './state.js';

export interface NamedStage {
  pipeline: Pipeline;
  /** Open (read-only) while `read` runs. */
  store: Store;
  state: StageState;
  record: StageRecord | undefined;
  source: 'current' | 'lock' | null;
}

/**
 * Finds the stage `stage` names in the pipeline (a matrix name is refused, naming its points),
 * opens the cache read-only and gives the stage to `read`; `usage` is the verb's synopsis, for the
 * line when the stage argument is missing.
 */
export async function readNamedStage<T>(
  file: string | undefined,
  stage: string | undefined,
  opts: CommonOptions,
  verb: string,
  usage: string,
  read: (named: NamedStage) => T,
): Promise<T> {
  const pipeline = loadPipeline(file, opts);
  if (!stage) throw new UsageError(`missing the stage argument: ${usage}`);
  const ids = resolveIds(pipeline, [stage], verb);
  if (ids.length > 1) throw new UsageError(`stage "${stage}" is a matrix; name one point: ${ids.join(', ')}`);
  const id = ids[0]!;
  const { lock } = lockOf(pipeline);
  const store = openStore(opts, pipeline.projectDir, 'read');
  try {
    const state = pipelineState(pipeline, store, lock).find((x) => x.node.id === id)!;
    const lockedKey = lock?.stages[id]?.key;
    const record = state.record ?? (lockedKey ? store.getRecord(lockedKey) : undefined);
    const source = state.record ? 'current' : record ? 'lock' : null;
    return read({ pipeline, store, state, record, source });
  } finally {
    await store.close();
  }
}
