// The terminal view of a run: finished stages scroll by as lines (the same words as the plain
// logger), and below them a live block with one row per running stage, its bar, rate and ETA.
// log-update owns the escape codes; picocolors the colours (it honours NO_COLOR and FORCE_COLOR).
// Loaded only when stderr is a terminal and CI is not set (cli.ts).
import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import type { Progress } from '../stages/contract.js';
import { humanLogger, type EventSink, type RunEvent } from './events.js';

/** Redraws at most this often; progress events arrive throttled already. */
const FRAME_MS = 100;
const BAR_WIDTH = 24;

interface Running {
  kind: string;
  started: number;
  update?: Progress;
  /** Where the current series (same unit and total) began: the rate is measured from there. */
  seriesStart?: { at: number; done: number; unit: string; total: number };
}

export function ttyLogger(
  out: NodeJS.WriteStream & { columns?: number } = process.stderr,
  verbose = false,
): EventSink & { stop(): void } {
  const live = createLogUpdate(out, { showCursor: true });
  const running = new Map<string, Running>();
  // Lines that stay: written through a plain logger into a buffer, then above the live block.
  let pending = '';
  const plain = humanLogger(
    {
      write: (s: string) => {
        pending += s;
        return true;
      },
    } as NodeJS.WritableStream,
    verbose,
  );
  let timer: NodeJS.Timeout | undefined;

  const render = (): void => {
    timer = undefined;
    if (pending) {
      live.clear();
      out.write(colour(pending));
      pending = '';
    }
    const now = Date.now();
    const width = Math.max(40, (out.columns ?? 100) - 1);
    const rows = [...running.entries()].map(([id, r]) => row(id, r, now).slice(0, width));
    live(rows.join('\n'));
  };
  const schedule = (): void => {
    timer ??= setTimeout(render, FRAME_MS);
  };

  const sink = (e: RunEvent): void => {
    switch (e.type) {
      case 'stage-start':
        running.set(e.id, { kind: e.kind, started: Date.now() });
        break;
      case 'stage-progress': {
        const r = running.get(e.id);
        if (!r) return;
        const u = e.update;
        const s = r.seriesStart;
        if (!s || s.unit !== u.unit || s.total !== u.total)
          r.seriesStart = { at: Date.now(), done: u.done, unit: u.unit, total: u.total };
        // A new epoch starts the count again: keep measuring the rate across it.
        else if (u.done < (r.update?.done ?? 0)) s.done -= u.total;
        r.update = u;
        break;
      }
      case 'stage-done':
        running.delete(e.report.id);
        break;
      default:
        break;
    }
    plain(e);
    if (pending && e.type !== 'stage-progress') render();
    else schedule();
  };
  return Object.assign(sink, {
    stop(): void {
      if (timer) clearTimeout(timer);
      running.clear();
      render();
      live.done();
    },
  });
}

/** "train@lr=0.01  ▕████████░░░░▏ 61% 39/64 batches  5.2/s  ETA 0:05  epoch 3/12 · loss 0.412" */
function row(id: string, r: Running, now: number): string {
  const u = r.update;
  const elapsed = `${clock((now - r.started) / 1000)}`;
  if (!u) return `${pc.cyan('…')} ${pc.bold(id)}  ${pc.dim(`${r.kind}, ${elapsed}`)}`;
  const frac = u.total > 0 ? Math.min(1, u.done / u.total) : 0;
  const filled = Math.round(frac * BAR_WIDTH);
  const bar = `▕${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}▏`;
  const s = r.seriesStart;
  const secs = s ? (now - s.at) / 1000 : 0;
  const rate = s && secs > 0.2 && u.done > s.done ? (u.done - s.done) / secs : undefined;
  const eta = rate && rate > 0 ? clock((u.total - u.done) / rate) : '–';
  const parts = [
    `${Math.floor(frac * 100)}%`.padStart(4),
    `${u.done}/${u.total} ${u.unit}`,
    rate === undefined ? '' : `${rate.toFixed(rate < 10 ? 1 : 0)}/s`,
    `ETA ${eta}`,
  ];
  return `${pc.cyan('…')} ${pc.bold(id)}  ${pc.green(bar)} ${parts.filter(Boolean).join('  ')}${u.detail ? `  ${pc.dim(u.detail)}` : ''}`;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The plain logger's marks, in colour. */
function colour(text: string): string {
  return text
    .replace(/^✓ ran/gm, pc.green('✓ ran'))
    .replace(/^✗ failed/gm, pc.red('✗ failed'))
    .replace(/^warning:/gm, pc.yellow('warning:'))
    .replace(/^(- skipped|· cached|\? may run|> would run)/gm, (m) => pc.dim(m));
}
