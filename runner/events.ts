// Execution emits typed events; loggers only render them. The human logger writes to stderr so
// stdout stays clean for --json.
export type StageStatus = 'ran' | 'cached' | 'failed' | 'skipped' | 'would-run';

export interface StageReport {
  id: string;
  kind: string;
  status: StageStatus;
  key: string | null;
  reason: string;
  durationMs: number;
  /** Outs put back on disk from the cache. */
  restored?: string[];
  logTail?: string[];
  /** The stage failed on invalid input data: the run exits 2. */
  inputError?: boolean;
}

export type RunEvent =
  | { type: 'stage-start'; id: string; kind: string; reason: string; slot: number }
  | { type: 'stage-log'; id: string; line: string }
  | { type: 'stage-done'; report: StageReport }
  | { type: 'warning'; message: string };

export type EventSink = (e: RunEvent) => void;

const MARK: Record<StageStatus, string> = { ran: '✓ ran', cached: '· cached', failed: '✗ failed', skipped: '- skipped', 'would-run': '> would run' };

export function humanLogger(out: NodeJS.WritableStream = process.stderr, verbose = false): EventSink {
  return (e) => {
    switch (e.type) {
      case 'stage-start': out.write(`${'… start'.padEnd(11)} ${e.id}: ${e.reason}\n`); break;
      case 'stage-log': if (verbose) out.write(`    ${e.id}| ${e.line}\n`); break;
      case 'stage-done': {
        const r = e.report;
        if (r.status === 'cached' && !r.restored?.length) break; // a no-op run stays quiet
        const time = r.status === 'ran' || r.status === 'failed' ? ` (${(r.durationMs / 1000).toFixed(1)}s)` : '';
        // A ran stage's reason was printed when it started.
        const extra = r.restored?.length ? ` — restored ${r.restored.join(', ')}` : r.status === 'cached' || r.status === 'ran' ? '' : `: ${r.reason}`;
        out.write(`${MARK[r.status].padEnd(11)} ${r.id}${time}${extra}\n`);
        if (r.status === 'failed') for (const l of r.logTail ?? []) out.write(`    | ${l}\n`);
        break;
      }
      case 'warning': out.write(`warning: ${e.message}\n`); break;
    }
  };
}
