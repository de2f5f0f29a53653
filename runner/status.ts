// `podium status`: each stage fresh or stale, and why.
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { pipelineState } from './state.js';

export interface StatusEntry {
  id: string;
  kind: string;
  status: 'fresh' | 'stale';
  key: string | null;
  reasons: string[];
}
export interface StatusReport {
  pipeline: string;
  stages: StatusEntry[];
  /** What reading the cache found wrong (a corrupt record, left for a run or gc to replace); the CLI prints these to stderr. */
  warnings: string[];
}

export async function status(file: string | undefined, opts: CommonOptions): Promise<StatusReport> {
  const pipeline = loadPipeline(file, opts);
  const { lock } = lockOf(pipeline);
  const store = openStore(opts, pipeline.projectDir, 'read');
  try {
    const states = pipelineState(pipeline, store, lock);
    return {
      pipeline: pipeline.name,
      stages: states.map((s) => ({
        id: s.node.id,
        kind: s.node.kind.name,
        status: s.fresh ? 'fresh' : 'stale',
        key: s.key ?? null,
        reasons: s.reasons,
      })),
      warnings: [...store.warnings],
    };
  } finally {
    await store.close();
  }
}

export function formatStatus(r: StatusReport): string {
  const stale = r.stages.filter((s) => s.status === 'stale').length;
  const lines = [`${r.pipeline}: ${r.stages.length - stale} fresh, ${stale} stale`];
  for (const s of r.stages)
    lines.push(`  ${s.status.padEnd(5)}  ${s.id}${s.reasons.length ? `: ${s.reasons.join('; ')}` : ''}`);
  return lines.join('\n');
}
