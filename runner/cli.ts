#!/usr/bin/env node
// The CLI boundary: parse arguments, call one verb, render its result. Exceptions are caught
// here once. Verb modules are imported lazily so `podium status` never loads what `run` needs,
// and nothing loads TensorFlow.js or sharp unless a stage that needs them executes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CacheUnavailable } from '../cache/store.js';
import { BACKEND_NAMES } from '../stages/tf/backend-names.js';
import { formatDiagnostic, UsageError } from './diagnostics.js';

const USAGE = `usage: podium <verb> [options]

  run <pipeline> [--dry-run] [--only ID]... [--from ID] [--force ID]... [--jobs N] [--gpus 0,1] [--backend ${BACKEND_NAMES.join('|')}] [--cache DIR] [--lease-timeout SECONDS] [--no-report] [--json] [--quiet] [--verbose]
  status <pipeline> [--json]
  diff <lockA> [<lockB> | <git-rev>] [--json]
  verify <pipeline> [--stages a,b] [--json]
  gc [--keep-runs N] [--dry-run] [--json]
  show <pipeline> <stage> [--json]
  report <pipeline> [--out FILE] [--compare <lock-file|git-rev>] [--json]
  metrics <pipeline> [--json | --csv]
  cat <pipeline> <stage> [output] [--out FILE]

Exit codes: 0 success, 1 a stage failed, verification found differences or the cache is unusable, 2 invalid pipeline or usage,
130/143 interrupted by SIGINT/SIGTERM (finished stages are kept; a second signal stops at once).`;

const common = { cache: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const OPTIONS = {
  run: { ...common, 'dry-run': { type: 'boolean' }, only: { type: 'string', multiple: true }, from: { type: 'string' }, force: { type: 'string', multiple: true }, jobs: { type: 'string' }, gpus: { type: 'string' }, 'lease-timeout': { type: 'string' }, 'no-report': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, verbose: { type: 'boolean', short: 'v' } },
  status: common,
  diff: common,
  verify: { ...common, stages: { type: 'string', multiple: true }, verbose: { type: 'boolean', short: 'v' } },
  gc: { ...common, 'keep-runs': { type: 'string' }, 'dry-run': { type: 'boolean' } },
  show: common,
  report: { ...common, out: { type: 'string', short: 'o' }, compare: { type: 'string' } },
  metrics: { ...common, csv: { type: 'boolean' } },
  cat: { ...common, out: { type: 'string', short: 'o' } },
} satisfies Record<string, ParseArgsConfig['options']>;

type Verb = keyof typeof OPTIONS;

function print(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

async function main(argv: string[]): Promise<number> {
  const verb = argv[0];
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') { process.stdout.write(`${USAGE}\n`); return verb ? 0 : 2; }
  if (!(verb in OPTIONS)) throw new UsageError(`unknown verb "${verb}"\n${USAGE}`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(1), options: OPTIONS[verb as Verb], allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${USAGE}`);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const pos = parsed.positionals;
  if (v.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  const json = !!v.json;
  const cache = v.cache as string | undefined;
  const backend = v.backend as string | undefined;
  const maxPositionals = { run: 1, status: 1, diff: 2, verify: 1, gc: 0, show: 2, report: 1, metrics: 1, cat: 3 }[verb as Verb];
  if (pos.length > maxPositionals) throw new UsageError(`unexpected argument "${pos[maxPositionals]}"\n${USAGE}`);
  const controller = interruptOnSignals();

  switch (verb as Verb) {
    case 'run': {
      const { runPipeline } = await import('./run.js');
      const { humanLogger } = await import('./events.js');
      // A terminal gets live bars; pipes and CI get plain lines without control characters.
      // (A pseudo-terminal that reports 0 rows has no room for a live block: plain lines there.)
      const live = !v.quiet && process.stderr.isTTY && !process.env.CI && (process.stderr.rows ?? 1) > 0 ? (await import('./progress-tty.js')).ttyLogger(process.stderr, !!v.verbose) : undefined;
      const logger = live ?? humanLogger(process.stderr, !!v.verbose, !!v.quiet);
      const jobs = v.jobs === undefined ? undefined : Number(v.jobs);
      const gpus = typeof v.gpus === 'string' ? v.gpus.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      const leaseTimeout = v['lease-timeout'] === undefined ? undefined : Number(v['lease-timeout']);
      const summary = await runPipeline(pos[0], { cache, backend, dryRun: !!v['dry-run'], only: v.only as string[] | undefined, from: v.from as string | undefined, force: v.force as string[] | undefined, jobs, gpus, leaseTimeout }, logger, controller.signal).finally(() => live?.stop());
      // The report is rebuilt after a run that did something (PODIUM_NO_REPORT=1 or --no-report skip it).
      let report: string | undefined;
      const wantReport = !v['dry-run'] && !v['no-report'] && !process.env.PODIUM_NO_REPORT && !summary.noop && !controller.signal.aborted && summary.stages.length > 0;
      if (wantReport && pos[0]) report = await (await import('./report/after-run.js')).reportAfterRun(pos[0], { cache, backend }, (l) => process.stderr.write(`${l}\n`));
      if (json) print(true, { pipeline: summary.pipeline, stages: summary.stages.map(({ id, kind, status, key, reason, durationMs }) => ({ id, kind, status, key, reason, durationMs })), ...(report ? { report } : {}) }, () => '');
      else {
        const count = (s: string): number => summary.stages.filter((r) => r.status === s).length;
        const parts = ['ran', 'cached', 'would-run', 'may-run', 'failed', 'skipped'].filter((s) => count(s)).map((s) => `${count(s)} ${s}`);
        process.stderr.write(`${summary.pipeline}: ${parts.join(', ') || 'no stages'}${summary.noop ? ' (nothing to do: no file changed since the last run)' : ''}\n`);
      }
      if (controller.signal.aborted) {
        const kept = summary.stages.filter((r) => r.status === 'ran' || r.status === 'cached').length;
        process.stderr.write(`interrupted: kept ${kept} finished stage${kept === 1 ? '' : 's'} (a rerun reuses them)\n`);
        return interruptedExitCode();
      }
      if (summary.stages.some((r) => r.inputError)) return 2;
      return summary.stages.some((r) => r.status === 'failed' || r.status === 'skipped') ? 1 : 0;
    }
    case 'status': {
      const { status, formatStatus } = await import('./status.js');
      const r = await status(pos[0], { cache, backend });
      print(json, r, () => formatStatus(r));
      return 0;
    }
    case 'diff': {
      const { diff, formatDiff } = await import('./diff.js');
      const r = await diff(pos[0], pos[1], { cache, backend });
      print(json, r, () => formatDiff(r));
      return 0;
    }
    case 'verify': {
      const { verify, formatVerify } = await import('./verify.js');
      const stages = (v.stages as string[] | undefined)?.flatMap((s) => s.split(',')).filter(Boolean);
      const r = await verify(pos[0], { cache, backend, stages }, controller.signal);
      print(json, r, () => formatVerify(r));
      if (controller.signal.aborted) return interruptedExitCode();
      return r.ok ? 0 : 1;
    }
    case 'gc': {
      const { gc, formatGc } = await import('./gc.js');
      const keepRuns = v['keep-runs'] === undefined ? undefined : Number(v['keep-runs']);
      const r = await gc({ cache, keepRuns, dryRun: !!v['dry-run'] });
      print(json, r, () => formatGc(r));
      return 0;
    }
    case 'show': {
      const { show, formatShow } = await import('./show.js');
      const r = await show(pos[0], pos[1], { cache, backend });
      print(json, r, () => formatShow(r));
      return 0;
    }
    case 'report': {
      const { report, formatReport } = await import('./report/index.js');
      const r = await report(pos[0], { cache, backend, out: v.out as string | undefined, compare: v.compare as string | undefined });
      print(json, r, () => formatReport(r));
      return 0;
    }
    case 'metrics': {
      const { metrics, formatMetrics, metricsCsv } = await import('./metrics.js');
      const r = metrics(pos[0], { cache, backend });
      if (v.csv) process.stdout.write(metricsCsv(r));
      else print(json, r, () => formatMetrics(r));
      return 0;
    }
    case 'cat': {
      const { cat } = await import('./cat.js');
      const r = await cat(pos[0], pos[1], pos[2], { cache, backend });
      if (typeof v.out === 'string') {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(v.out, r.bytes);
        process.stderr.write(`${r.id} ${r.output}: ${r.bytes.length} bytes (${r.digest.slice(0, 12)}) to ${v.out}\n`);
      } else await new Promise<void>((res, rej) => process.stdout.write(r.bytes, (e) => (e ? rej(e) : res())));
      return 0;
    }
  }
}

/** The first signal whose handling is under way: SIGINT or SIGTERM. */
let signalled: NodeJS.Signals | undefined;

/**
 * SIGINT/SIGTERM abort the run: running stages are stopped (their process groups killed), nothing
 * new starts, finished stages stay in the cache. `process.on`, not `once`: with no listener left,
 * execa's signal-exit would re-raise the signal and kill podium before it could tidy up. A second
 * signal exits at once; stage processes notice their runner is gone and stop themselves.
 */
function interruptOnSignals(): AbortController {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`podium: ${sig} again, stopping now\n`);
      process.exit(interruptedExitCode());
    }
    signalled = sig;
    process.stderr.write(`podium: ${sig}, stopping running stages…\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller;
}

function interruptedExitCode(): number {
  return signalled === 'SIGTERM' ? 143 : 130;
}

let settled = false;
// A promise that never settles (a library waiting on I/O that failed) would let the event loop
// drain and Node exit 0 as if all went well: say so and fail instead.
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write('podium: internal error: stopped before finishing (an operation never completed); nothing more was written\n');
  process.exit(1);
});

main(process.argv.slice(2)).finally(() => { settled = true; }).then((code) => { process.exitCode = code; }, (e: unknown) => {
  if (signalled) {
    process.stderr.write(`podium: interrupted (${(e as Error).message.split('\n')[0]})\n`);
    process.exitCode = interruptedExitCode();
  } else if (e instanceof CacheUnavailable) {
    // After a failed write, LMDB's C library may have printed "Write error: …" without a newline.
    process.stderr.write(`${e.message.startsWith('writing to') ? '\n' : ''}podium: ${e.message}\n`);
    process.exitCode = 1;
  } else if (e instanceof UsageError) {
    process.stderr.write(`podium: ${e.message}\n`);
    for (const d of e.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`podium: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
});
