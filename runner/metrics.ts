// `podium metrics <pipeline> [--json|--csv]`: every stage's metrics from the lock file, one table
// per stage as written in the pipeline, its matrix points as rows (with the params that vary
// between them as columns, like `dvc exp show`), and the best value of each scored column marked.
import { canonicalJson } from '../cache/canonical.js';
import { lockOf, loadPipeline, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';

export type Direction = 'max' | 'min';

export interface MetricsRow {
  id: string;
  /** Values of the params that differ between the stage's points. */
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  /** Metric names whose best value (over the stage's points) this row holds. */
  best: string[];
  /** False when the lock file has no entry for this point (never run to success). */
  inLock: boolean;
}

export interface MetricsTable {
  stage: string;
  kind: string;
  params: string[];
  metrics: string[];
  directions: Record<string, Direction>;
  rows: MetricsRow[];
}
export interface MetricsReport {
  pipeline: string;
  lock: string;
  tables: MetricsTable[];
}

/**
 * Which way a metric improves, from its name: accuracies and rates up, losses and times down.
 * Counts and settings (epoch, lr, images, checkpoints) have no best and are not marked.
 */
export function directionOf(name: string): Direction | undefined {
  if (/loss|error|seconds|duration|time|Ms$/i.test(name)) return 'min';
  if (/top\d|acc|precision|recall|f1|auc|perSec|throughput|score/i.test(name)) return 'max';
  return undefined;
}

export function metrics(file: string | undefined, opts: CommonOptions): MetricsReport {
  const pipeline = loadPipeline(file, opts);
  const { path, lock } = lockOf(pipeline);
  if (!lock) throw new UsageError(`${path}: no lock file yet; run the pipeline first (podium run ${file})`);
  const groups = new Map<string, typeof pipeline.stages>();
  for (const node of pipeline.stages) groups.set(node.baseId, [...(groups.get(node.baseId) ?? []), node]);
  const tables: MetricsTable[] = [];
  for (const [stage, nodes] of groups) {
    const entries = nodes.map((n) => ({ node: n, lock: lock.stages[n.id] }));
    const params = Object.keys(nodes[0]!.params).filter(
      (k) => new Set(nodes.map((n) => canonicalJson(n.params[k] ?? null))).size > 1,
    );
    const names = [...new Set(entries.flatMap((e) => Object.keys(e.lock?.metrics ?? {})))];
    const directions: Record<string, Direction> = {};
    for (const m of names) {
      const d = directionOf(m);
      if (d) directions[m] = d;
    }
    const rows: MetricsRow[] = entries.map((e) => ({
      id: e.node.id,
      params: Object.fromEntries(params.map((p) => [p, e.node.params[p]])),
      metrics: e.lock?.metrics ?? {},
      best: [],
      inLock: !!e.lock,
    }));
    // A best needs something to beat: only columns with numbers in two rows or more are marked.
    for (const [m, d] of Object.entries(directions)) {
      const values = rows
        .map((r) => r.metrics[m])
        .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      if (values.length < 2) continue;
      const best = d === 'max' ? Math.max(...values) : Math.min(...values);
      for (const r of rows) if (r.metrics[m] === best) r.best.push(m);
    }
    tables.push({ stage, kind: nodes[0]!.kind.name, params, metrics: names, directions, rows });
  }
  return { pipeline: pipeline.name, lock: path, tables };
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'number')
    return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 ? v.toFixed(1) : Number(v.toPrecision(4)).toString();
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Terminal tables, columns aligned; the best value of a column carries a `*`. */
export function formatMetrics(r: MetricsReport): string {
  const out: string[] = [];
  for (const t of r.tables) {
    if (!t.metrics.length && t.rows.every((x) => x.inLock)) continue;
    out.push(`${t.stage} (${t.kind})`);
    const header = [
      '',
      ...t.params.map((p) => `params.${p}`),
      ...t.metrics.map((m) => (t.directions[m] ? `${m} ${t.directions[m] === 'max' ? '↑' : '↓'}` : m)),
    ];
    const body = t.rows.map((x) => [
      x.id,
      ...t.params.map((p) => cell(x.params[p])),
      ...(x.inLock
        ? t.metrics.map((m) => `${cell(x.metrics[m])}${x.best.includes(m) ? '*' : ' '}`)
        : ['(not in the lock file)']),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
    const line = (row: string[]): string =>
      `  ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`.trimEnd();
    out.push(line(header), ...body.map(line), '');
  }
  if (!out.length) return `${r.pipeline}: no metrics in ${r.lock}`;
  out.push('* best of its column among the points (↑ higher is better, ↓ lower); from the lock file');
  return out.join('\n');
}

/** One CSV row per stage point: stage, id, every varying param and every metric, and which are best. */
export function metricsCsv(r: MetricsReport): string {
  const params = [...new Set(r.tables.flatMap((t) => t.params))];
  const names = [...new Set(r.tables.flatMap((t) => t.metrics))];
  const field = (v: unknown): string => {
    const s =
      v === undefined || v === null
        ? ''
        : typeof v === 'string'
          ? v
          : typeof v === 'number'
            ? String(v)
            : JSON.stringify(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [['stage', 'id', ...params.map((p) => `param:${p}`), ...names, 'marked_best'].map(field).join(',')];
  for (const t of r.tables)
    for (const x of t.rows)
      lines.push(
        [t.stage, x.id, ...params.map((p) => x.params[p]), ...names.map((m) => x.metrics[m]), x.best.join(' ')]
          .map(field)
          .join(','),
      );
  return `${lines.join('\n')}\n`;
}
