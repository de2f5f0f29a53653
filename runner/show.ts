// `podium show <pipeline> <stage>`: one stage's record, params, outputs, metrics and log tail.
import type { StageRecord } from '../cache/store.js';
import type { CommonOptions } from './context.js';
import { readNamedStage } from './named-stage.js';

export interface ShowReport {
  /** The pipeline file as given, for the `podium cat` line. */
  file: string;
  id: string;
  kind: string;
  status: 'fresh' | 'stale';
  reasons: string[];
  key: string | null;
  params: Record<string, unknown>;
  inputs: Record<string, string[]>;
  /** The current record, or when stale the one the lock file names (if still cached). */
  record: (StageRecord & { outputSizes: Record<string, number | null> }) | null;
  recordSource: 'current' | 'lock' | null;
}

export async function show(
  file: string | undefined,
  stage: string | undefined,
  opts: CommonOptions,
): Promise<ShowReport> {
  const usage = 'podium show <pipeline> <stage>';
  return readNamedStage(file, stage, opts, 'show', usage, ({ store, state: s, record, source }) => ({
    file: file!,
    id: s.node.id,
    kind: s.node.kind.name,
    status: s.fresh ? 'fresh' : 'stale',
    reasons: s.reasons,
    key: s.key ?? null,
    params: s.node.params,
    inputs: Object.fromEntries(Object.entries(s.node.inputs).map(([k, v]) => [k, v.ids])),
    record: record
      ? {
          ...record,
          outputSizes: Object.fromEntries(
            Object.entries(record.outputs).map(([k, d]) => [k, store.blobInfo(d)?.size ?? null]),
          ),
        }
      : null,
    recordSource: source,
  }));
}

export function formatShow(r: ShowReport): string {
  const lines = [
    `${r.id} (${r.kind}): ${r.status}${r.reasons.length ? ` — ${r.reasons.join('; ')}` : ''}`,
    `key     ${r.key ?? '(unknown: an input is stale)'}`,
  ];
  lines.push(`params  ${JSON.stringify(r.params)}`);
  for (const [k, v] of Object.entries(r.inputs)) lines.push(`input   ${k} ← ${v.join(', ')}`);
  const rec = r.record;
  if (!rec) {
    lines.push('record  none in the cache');
    return lines.join('\n');
  }
  if (r.recordSource === 'lock')
    lines.push(`record  (from the lock file; the current params have no result yet) ${rec.key}`);
  lines.push(
    `ran     ${rec.startedAt} in ${(rec.durationMs / 1000).toFixed(2)}s${rec.backend ? ` on ${rec.backend}` : ''}`,
  );
  if (rec.where)
    lines.push(
      `where   slurm job ${rec.where.jobId} on ${rec.where.node}${rec.where.gpus ? `, CUDA_VISIBLE_DEVICES=${rec.where.gpus}` : ''}`,
    );
  if (rec.timing)
    lines.push(
      `timing  ${Object.entries(rec.timing)
        .map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`)
        .join(', ')}`,
    );
  for (const [k, d] of Object.entries(rec.outputs))
    lines.push(`output  ${k}  ${d.slice(0, 12)}  ${rec.outputSizes[k] ?? '?'} bytes`);
  if (Object.keys(rec.outputs).length)
    lines.push(`        (take one out: podium cat ${quote(r.file)} ${quote(r.id)} <output> [--out FILE])`);
  for (const [k, m] of Object.entries(rec.metrics)) lines.push(`metric  ${k} = ${JSON.stringify(m)}`);
  if (rec.logTail.length) lines.push('log tail:', ...rec.logTail.map((l) => `  | ${l}`));
  return lines.join('\n');
}

/** A shell word for the hint line: ids of matrix points hold '=', quotes and braces. */
function quote(s: string): string {
  return /^[\w@=.,:/+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
