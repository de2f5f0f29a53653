// Execution emits typed events; loggers only render them. The human loggers write to stderr so
// stdout stays clean for --json: this plain one (pipes, CI, --quiet) and progress-tty.ts.
import type { Progress } from '../stages/contract.js';
import type { StageFailure } from './stage-failure.js';
/** 'may-run' (dry runs only): runs if an upstream stage that would run changes its output (early cutoff decides). */
export type StageStatus = 'ran' | 'cached' | 'failed' | 'skipped' | 'would-run' | 'may-run';

export interface StageReport {
  id: string;
  kind: string;
  status: StageStatus;
  key: string | null;
  reason: string;
  durationMs: number;
  /** Outs put back on disk from the cache. */
  restored?: string[];
  /** Why a failed stage failed (an input failure makes the run exit 2), with its log tail. */
  failure?: StageFailure;
  /** A stage that ran: the metrics its record holds (val scores, losses, counts). */
  metrics?: Record<string, unknown>;
}

export type RunEvent =
  | { type: 'stage-start'; id: string; kind: string; reason: string; slot: number }
  | { type: 'stage-log'; id: string; line: string }
  | { type: 'stage-note'; id: string; line: string }
  | { type: 'stage-progress'; id: string; update: Progress }
  | { type: 'stage-done'; report: StageReport }
  | { type: 'warning'; message: string };

export type EventSink = (e: RunEvent) => void;

const STACK_FRAME = /^\s+at \S/;

const MARK: Record<StageStatus, string> = {
  ran: '✓ ran',
  cached: '· cached',
  failed: '✗ failed',
  skipped: '- skipped',
  'would-run': '> would run',
  'may-run': '? may run',
};

/**
 * Plain lines, no control characters: one per stage event and one per note (a finetune epoch).
 * quiet: failures and warnings only (the CLI prints the summary).
 */
export function humanLogger(out: NodeJS.WritableStream = process.stderr, verbose = false, quiet = false): EventSink {
  return (e) => {
    if (quiet && !(e.type === 'warning' || (e.type === 'stage-done' && e.report.status === 'failed'))) return;
    switch (e.type) {
      case 'stage-start':
        out.write(`${'… start'.padEnd(11)} ${e.id}: ${e.reason}\n`);
        break;
      case 'stage-log':
        if (verbose) out.write(`    ${e.id}| ${e.line}\n`);
        break;
      case 'stage-note':
        if (!verbose) out.write(`    ${e.id}| ${e.line}\n`);
        break;
      case 'stage-progress':
        break;
      case 'stage-done': {
        const r = e.report;
        if (r.status === 'cached' && !r.restored?.length) break; // a no-op run stays quiet
        const time = r.status === 'ran' || r.status === 'failed' ? ` (${(r.durationMs / 1000).toFixed(1)}s)` : '';
        // A ran stage's reason was printed when it started.
        const extra = r.restored?.length
          ? ` — restored ${r.restored.join(', ')}`
          : r.status === 'ran'
            ? metricsSummary(r.metrics)
            : r.status === 'cached'
              ? ''
              : `: ${r.reason}`;
        out.write(`${MARK[r.status].padEnd(11)} ${r.id}${time}${extra}\n`);
        if (r.status === 'failed') {
          // An internal error's stack is for whoever debugs podium: shown with --verbose only.
          const tail = r.failure?.logTail ?? [];
          const shown = verbose ? tail : tail.filter((l) => !STACK_FRAME.test(l));
          for (const l of shown) out.write(`    | ${l}\n`);
          if (shown.length < tail.length) out.write('    | (rerun with --verbose for the stack)\n');
        }
        break;
      }
      case 'warning':
        out.write(`warning: ${e.message}\n`);
        break;
    }
  };
}

/** " — valTop1 0.975, holdoutTop1 0.9667": a ran stage's numeric metrics, so a run shows its scores. */
export function metricsSummary(metrics: Record<string, unknown> | undefined, max = 8): string {
  const shown = Object.entries(metrics ?? {})
    .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
    .slice(0, max);
  return shown.length
    ? ` — ${shown.map(([k, v]) => `${k} ${Number.isInteger(v) ? v : Number(v.toPrecision(4))}`).join(', ')}`
    : '';
}
