#!/usr/bin/env node
// The CLI boundary: parse arguments, call one verb, render its result. Exceptions are caught
// here once. Verb modules are imported lazily so `podium status` never loads what `run` needs,
// and nothing loads TensorFlow.js or sharp unless a stage that needs them executes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BACKEND_NAMES } from '../stages/tf/backend-names.js';
import { formatDiagnostic, UsageError } from './diagnostics.js';

const USAGE = `usage: podium <verb> [options]

  run <pipeline> [--dry-run] [--only ID]... [--from ID] [--force ID]... [--jobs N] [--gpus 0,1] [--backend ${BACKEND_NAMES.join('|')}] [--cache DIR] [--json] [--verbose]
  status <pipeline> [--json]
  diff <lockA> [<lockB> | <git-rev>] [--json]
  verify <pipeline> [--stages a,b] [--json]
  gc [--keep-runs N] [--json]
  show <pipeline> <stage> [--json]

Exit codes: 0 success, 1 a stage failed or verification found differences, 2 invalid pipeline or usage.`;

const common = { cache: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const OPTIONS = {
  run: { ...common, 'dry-run': { type: 'boolean' }, only: { type: 'string', multiple: true }, from: { type: 'string' }, force: { type: 'string', multiple: true }, jobs: { type: 'string' }, gpus: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } },
  status: common,
  diff: common,
  verify: { ...common, stages: { type: 'string', multiple: true }, verbose: { type: 'boolean', short: 'v' } },
  gc: { ...common, 'keep-runs': { type: 'string' } },
  show: common,
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
  const maxPositionals = { run: 1, status: 1, diff: 2, verify: 1, gc: 0, show: 2 }[verb as Verb];
  if (pos.length > maxPositionals) throw new UsageError(`unexpected argument "${pos[maxPositionals]}"\n${USAGE}`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());

  switch (verb as Verb) {
    case 'run': {
      const { runPipeline } = await import('./run.js');
      const { humanLogger } = await import('./events.js');
      const jobs = v.jobs === undefined ? undefined : Number(v.jobs);
      const gpus = typeof v.gpus === 'string' ? v.gpus.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      const summary = await runPipeline(pos[0], { cache, backend, dryRun: !!v['dry-run'], only: v.only as string[] | undefined, from: v.from as string | undefined, force: v.force as string[] | undefined, jobs, gpus }, humanLogger(process.stderr, !!v.verbose), controller.signal);
      if (json) print(true, { pipeline: summary.pipeline, stages: summary.stages.map(({ id, kind, status, key, reason, durationMs }) => ({ id, kind, status, key, reason, durationMs })) }, () => '');
      else {
        const count = (s: string): number => summary.stages.filter((r) => r.status === s).length;
        const parts = ['ran', 'cached', 'would-run', 'failed', 'skipped'].filter((s) => count(s)).map((s) => `${count(s)} ${s}`);
        process.stderr.write(`${summary.pipeline}: ${parts.join(', ') || 'no stages'}${summary.noop ? ' (nothing to do: no file changed since the last run)' : ''}\n`);
      }
      if (controller.signal.aborted) return 130;
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
      return r.ok ? 0 : 1;
    }
    case 'gc': {
      const { gc, formatGc } = await import('./gc.js');
      const keepRuns = v['keep-runs'] === undefined ? undefined : Number(v['keep-runs']);
      const r = await gc({ cache, keepRuns });
      print(json, r, () => formatGc(r));
      return 0;
    }
    case 'show': {
      const { show, formatShow } = await import('./show.js');
      const r = await show(pos[0], pos[1], { cache, backend });
      print(json, r, () => formatShow(r));
      return 0;
    }
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`podium: ${e.message}\n`);
    for (const d of e.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`podium: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
});
