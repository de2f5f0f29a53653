#!/usr/bin/env node
// The CLI boundary: parse arguments, call one verb, render its result. Exceptions are caught
// here once. Verb modules are imported lazily so `podium status` never loads what `run` needs,
// and nothing loads TensorFlow.js or sharp unless a stage that needs them executes.
import { readFileSync } from 'node:fs';
import { CacheUnavailable } from '../cache/store.js';
import { takeCacheWarnings } from './cache-warnings.js';
import { bashCompletion, globalUsage, parseVerb, verbHelp, verbOf, type Verb } from './cli-args.js';
import { formatDiagnostic, UsageError } from './diagnostics.js';

function print(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

/** The package's version, read only when asked for. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (first === undefined || first === '--help' || first === '-h') {
    (first ? process.stdout : process.stderr).write(`${globalUsage()}\n`);
    return first ? 0 : 2;
  }
  if (first === 'help') {
    process.stdout.write(`${argv[1] === undefined ? globalUsage() : verbHelp(verbOf(argv[1]))}\n`);
    return 0;
  }
  const verb: Verb = verbOf(first);
  const parsed = parseVerb(verb, argv.slice(1));
  const v = parsed.values;
  const pos = parsed.positionals;
  if (v.help) {
    process.stdout.write(`${verbHelp(verb)}\n`);
    return 0;
  }
  const json = !!v.json;
  const cache = v.cache as string | undefined;
  const backend = v.backend as string | undefined;
  const set = v.set as string[] | undefined;
  const controller = interruptOnSignals();

  switch (verb) {
    case 'run': {
      const { runPipeline } = await import('./run.js');
      const { humanLogger } = await import('./events.js');
      // A terminal gets live bars; pipes and CI get plain lines without control characters.
      // (A pseudo-terminal that reports 0 rows has no room for a live block: plain lines there.)
      const live =
        !v.quiet && process.stderr.isTTY && !process.env.CI && (process.stderr.rows ?? 1) > 0
          ? (await import('./progress-tty.js')).ttyLogger(process.stderr, !!v.verbose)
          : undefined;
      const logger = live ?? humanLogger(process.stderr, !!v.verbose, !!v.quiet);
      const jobs = v.jobs === undefined ? undefined : Number(v.jobs);
      const gpus =
        typeof v.gpus === 'string'
          ? v.gpus
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : undefined;
      const leaseTimeout = v['lease-timeout'] === undefined ? undefined : Number(v['lease-timeout']);
      const summary = await runPipeline(
        pos[0],
        {
          cache,
          backend,
          dryRun: !!v['dry-run'],
          only: v.only as string[] | undefined,
          from: v.from as string | undefined,
          force: v.force as string[] | undefined,
          jobs,
          gpus,
          leaseTimeout,
          set,
          ...clusterOptions(v),
        },
        logger,
        controller.signal,
      ).finally(() => live?.stop());
      // The report is rebuilt after a run that did something (PODIUM_NO_REPORT=1 or --no-report skip it).
      let report: string | undefined;
      const wantReport =
        !v['dry-run'] &&
        !v['no-report'] &&
        !process.env.PODIUM_NO_REPORT &&
        !summary.noop &&
        !controller.signal.aborted &&
        summary.stages.length > 0;
      if (wantReport && pos[0])
        report = await (await import('./report/after-run.js')).reportAfterRun(pos[0], { cache, backend, set }, (l) =>
          process.stderr.write(`${l}\n`),
        );
      if (json)
        print(
          true,
          {
            pipeline: summary.pipeline,
            stages: summary.stages.map(({ id, kind, status, key, reason, durationMs, failure }) => ({
              id,
              kind,
              status,
              key,
              reason,
              durationMs,
              ...(failure
                ? { failure: { reason: failure.reason, ...(failure.path !== undefined ? { path: failure.path } : {}) } }
                : {}),
            })),
            ...(report ? { report } : {}),
          },
          () => '',
        );
      else {
        const count = (s: string): number => summary.stages.filter((r) => r.status === s).length;
        const parts = ['ran', 'cached', 'would-run', 'may-run', 'failed', 'skipped']
          .filter((s) => count(s))
          .map((s) => `${count(s)} ${s}`);
        process.stderr.write(
          `${summary.pipeline}: ${parts.join(', ') || 'no stages'}${summary.noop ? ' (nothing to do: no file changed since the last run)' : ''}\n`,
        );
      }
      if (controller.signal.aborted) {
        const kept = summary.stages.filter((r) => r.status === 'ran' || r.status === 'cached').length;
        process.stderr.write(
          `interrupted: kept ${kept} finished stage${kept === 1 ? '' : 's'} (a rerun reuses them)\n`,
        );
        return interruptedExitCode();
      }
      if (summary.stages.some((r) => r.failure?.reason === 'input')) return 2;
      return summary.stages.some((r) => r.status === 'failed' || r.status === 'skipped') ? 1 : 0;
    }
    case 'push':
    case 'pull': {
      const { transfer, formatTransfer } = await import('./push-pull.js');
      const { humanLogger } = await import('./events.js');
      const r = await transfer(
        verb,
        pos[0],
        { cache, backend, set, remote: v.remote as string | undefined },
        humanLogger(process.stderr),
        controller.signal,
      );
      print(json, r, () => formatTransfer(r));
      if (controller.signal.aborted) return interruptedExitCode();
      return r.missing.length ? 1 : 0;
    }
    case 'exec-stage': {
      const { execStage } = await import('./slurm/exec-stage.js');
      const need = (flag: string): string => {
        if (typeof v[flag] !== 'string') throw new UsageError(`exec-stage needs --${flag}`);
        return v[flag] as string;
      };
      return execStage(
        {
          pipeline: pos[0]!,
          stageId: pos[1]!,
          key: need('key'),
          spec: need('spec'),
          result: need('result'),
          remote: need('remote'),
        },
        controller.signal,
      );
    }
    case 'status': {
      const { status, formatStatus } = await import('./status.js');
      const r = await status(pos[0], { cache, backend, set });
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
      const r = await verify(pos[0], { cache, backend, set, stages }, controller.signal);
      print(json, r, () => formatVerify(r));
      if (controller.signal.aborted) return interruptedExitCode();
      return r.ok ? 0 : 1;
    }
    case 'gc': {
      const { gc, formatGc } = await import('./gc.js');
      const keepRuns = v['keep-runs'] === undefined ? undefined : Number(v['keep-runs']);
      const r = await gc({ cache, keepRuns, dryRun: !!v['dry-run'], compact: !!v.compact });
      print(json, r, () => formatGc(r));
      return 0;
    }
    case 'show': {
      const { show, formatShow } = await import('./show.js');
      const r = await show(pos[0], pos[1], { cache, backend, set });
      print(json, r, () => formatShow(r));
      return 0;
    }
    case 'report': {
      const { report, formatReport } = await import('./report/index.js');
      const r = await report(pos[0], {
        cache,
        backend,
        set,
        out: v.out as string | undefined,
        compare: v.compare as string | undefined,
      });
      print(json, r, () => formatReport(r));
      return 0;
    }
    case 'dag': {
      const { dag, formatDag } = await import('./dag.js');
      process.stdout.write(
        formatDag(dag(pos[0]!, { backend, set }), (v.format as 'text' | 'mermaid' | 'dot' | undefined) ?? 'text'),
      );
      return 0;
    }
    case 'completion':
      if (pos[0] !== undefined && pos[0] !== 'bash')
        throw new UsageError(`completion: only bash is supported, got "${pos[0]}"`);
      process.stdout.write(bashCompletion());
      return 0;
    case 'metrics': {
      const { metrics, formatMetrics, metricsCsv } = await import('./metrics.js');
      const r = metrics(pos[0], { cache, backend, set });
      if (v.csv) process.stdout.write(metricsCsv(r));
      else print(json, r, () => formatMetrics(r));
      return 0;
    }
    case 'cat': {
      const { cat } = await import('./cat.js');
      const r = await cat(pos[0], pos[1], pos[2], { cache, backend, set });
      if (typeof v.out === 'string') {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(v.out, r.bytes);
        process.stderr.write(`${r.id} ${r.output}: ${r.bytes.length} bytes (${r.digest.slice(0, 12)}) to ${v.out}\n`);
      } else await new Promise<void>((res, rej) => process.stdout.write(r.bytes, (e) => (e ? rej(e) : res())));
      return 0;
    }
  }
}

/** run's --executor slurm options, passed on only when given (the local path never sees them). */
function clusterOptions(v: Record<string, unknown>): {
  executor?: 'local' | 'slurm';
  maxJobs?: number;
  remote?: string;
  cancelOnInterrupt?: boolean;
} {
  return {
    ...(v.executor ? { executor: v.executor as 'local' | 'slurm' } : {}),
    ...(v['max-jobs'] ? { maxJobs: Number(v['max-jobs']) } : {}),
    ...(v.remote ? { remote: v.remote as string } : {}),
    ...(v['cancel-on-interrupt'] ? { cancelOnInterrupt: true } : {}),
  };
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
  process.stderr.write(
    'podium: internal error: stopped before finishing (an operation never completed); nothing more was written\n',
  );
  process.exit(1);
});

main(process.argv.slice(2))
  .finally(() => {
    settled = true;
    // Whatever verb ran, and whether or not it succeeded: what reading the cache found, once.
    for (const w of takeCacheWarnings()) process.stderr.write(`warning: ${w}\n`);
  })
  .then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (signalled) {
        process.stderr.write(`podium: interrupted (${(e as Error).message.split('\n')[0]})\n`);
        process.exitCode = interruptedExitCode();
      } else if (e instanceof CacheUnavailable) {
        // After a failed write, LMDB's C library may have printed "Write error: …" without a newline.
        process.stderr.write(`${e.message.startsWith('writing to') ? '\n' : ''}podium: ${e.message}\n`);
        process.exitCode = 1;
        // After a failed write LMDB's native state may be damaged: leave now, before anything else
        // (a pending close, a clean-up at exit) touches it.
        if (e.message.startsWith('writing to')) process.exit(1);
      } else if (e instanceof UsageError) {
        process.stderr.write(`podium: ${e.message}\n`);
        for (const d of e.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
        process.exitCode = 2;
      } else {
        // A bug, not a mistake of the user's: one line, and the stack for whoever debugs it on request.
        const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
        const err = e instanceof Error ? e : new Error(String(e));
        process.stderr.write(
          verbose
            ? `podium: internal error: ${err.stack ?? err.message}\n`
            : `podium: internal error: ${err.message.split('\n')[0]}\n(rerun with --verbose for the stack)\n`,
        );
        process.exitCode = 1;
      }
    },
  );
