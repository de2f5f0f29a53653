// The command line's grammar: each verb's positionals and options, each with a one-line help,
// parsed with node:util's parseArgs. A CLI library (commander) was measured first: importing it
// alone added ~12 ms (11%) to the no-op run of 1000 stages, which has a budget, so the help,
// "did you mean" and value checks live here instead, in plain code loaded by every verb.
import { parseArgs } from 'node:util';
import { BACKEND_NAMES } from '../stages/tf/backend-names.js';
import { didYouMean, UsageError } from './diagnostics.js';

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help, e.g. N or DIR. */
  arg?: string;
  help: string;
}

interface VerbSpec {
  /** Positionals as shown in usage; `[x]` optional. */
  args: string[];
  summary: string;
  options: Record<string, OptionSpec>;
  /** Internal verbs (run by podium itself, e.g. on a cluster node) stay out of help and completion. */
  hidden?: boolean;
}

export const BACKENDS = BACKEND_NAMES;
export const DAG_FORMATS = ['text', 'mermaid', 'dot'] as const;

const cache: Record<string, OptionSpec> = {
  cache: { type: 'string', arg: 'DIR', help: 'the cache folder (default .podium/cache, or $PODIUM_CACHE)' },
};
const backend: Record<string, OptionSpec> = {
  backend: {
    type: 'string',
    arg: BACKENDS.join('|'),
    help: 'TensorFlow.js backend for stages that do not set their own (part of their keys)',
  },
};
const set: Record<string, OptionSpec> = {
  set: {
    type: 'string',
    multiple: true,
    arg: 'STAGE.FIELD=VALUE',
    help: 'override a value of the pipeline, e.g. --set train.params.lr=0.02 (JSON, else a string; repeatable)',
  },
};
const json: Record<string, OptionSpec> = { json: { type: 'boolean', help: 'print the result as JSON on stdout' } };
const always: Record<string, OptionSpec> = {
  verbose: { type: 'boolean', short: 'v', help: 'print stage logs as they come, and the stack of an internal error' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
};
const pipelineOpts = { ...set, ...cache, ...backend };
const remote: Record<string, OptionSpec> = {
  remote: {
    type: 'string',
    arg: 'DIR',
    help: 'the shared store (default $PODIUM_REMOTE, or "remote" in podium.config.json)',
  },
};
export const EXECUTORS = ['local', 'slurm'] as const;

export const VERBS = {
  run: {
    args: ['<pipeline>'],
    summary: 'run the pipeline; cached stages are skipped',
    options: {
      'dry-run': { type: 'boolean', help: 'say what would run, and why; execute and write nothing' },
      only: {
        type: 'string',
        multiple: true,
        arg: 'ID',
        help: 'only this stage and what it needs (repeatable; fit@0 names a matrix point)',
      },
      from: { type: 'string', arg: 'ID', help: 're-execute this stage and everything downstream of it' },
      force: { type: 'string', multiple: true, arg: 'ID', help: 're-execute this stage even when cached (repeatable)' },
      jobs: { type: 'string', arg: 'N', help: 'stages run at once (default: the number of CPU cores)' },
      gpus: { type: 'string', arg: '0,1', help: 'one CUDA_VISIBLE_DEVICES per worker slot' },
      'lease-timeout': {
        type: 'string',
        arg: 'SECONDS',
        help: 'wait this long for a stage another podium is computing (default 6 h, or $PODIUM_LEASE_TIMEOUT)',
      },
      'no-report': { type: 'boolean', help: 'do not rebuild the HTML report after the run (or PODIUM_NO_REPORT=1)' },
      quiet: { type: 'boolean', short: 'q', help: 'print only failures, warnings and the summary' },
      executor: {
        type: 'string',
        arg: EXECUTORS.join('|'),
        help: 'where stages run: here (default), or as SLURM jobs (settings in podium.config.json, docs/cluster.md)',
      },
      'max-jobs': {
        type: 'string',
        arg: 'N',
        help: 'with --executor slurm: jobs queued or running at once (default 100; --jobs does not bound them)',
      },
      'cancel-on-interrupt': {
        type: 'boolean',
        help: 'with --executor slurm: cancel queued and running jobs on Ctrl-C without asking',
      },
      ...remote,
      ...pipelineOpts,
      ...json,
    },
  },
  push: {
    args: ['<pipeline>'],
    summary: 'copy the records and blobs its lock file names to the shared store',
    options: { ...remote, ...pipelineOpts, ...json },
  },
  pull: {
    args: ['<pipeline>'],
    summary: 'copy the records and blobs its lock file names from the shared store',
    options: { ...remote, ...pipelineOpts, ...json },
  },
  'exec-stage': {
    args: ['<pipeline>', '<stage>'],
    summary: 'run one stage as a cluster job (internal: started by --executor slurm)',
    hidden: true,
    options: {
      key: { type: 'string', arg: 'KEY', help: 'the stage key the runner computed' },
      spec: { type: 'string', arg: 'FILE', help: "the job's inputs, written by the runner" },
      result: { type: 'string', arg: 'FILE', help: 'where to write the record' },
      ...remote,
    },
  },
  status: {
    args: ['<pipeline>'],
    summary: 'each stage fresh or stale, and why',
    options: { ...pipelineOpts, ...json },
  },
  dag: {
    args: ['<pipeline>'],
    summary: 'the stage graph as text, Mermaid or Graphviz DOT',
    options: {
      format: {
        type: 'string',
        short: 'f',
        arg: DAG_FORMATS.join('|'),
        help: 'text (default) for the terminal, mermaid for Markdown, dot for Graphviz',
      },
      ...set,
      ...backend,
    },
  },
  diff: {
    args: ['<lockA>', '[<lockB> | <git-rev>]'],
    summary: 'params, outputs and metrics that changed between two lock files',
    options: { ...cache, ...backend, ...json },
  },
  verify: {
    args: ['<pipeline>'],
    summary: 're-execute and compare with the lock file, byte for byte',
    options: {
      stages: { type: 'string', multiple: true, arg: 'a,b', help: 'only these stages (repeatable or comma-separated)' },
      ...pipelineOpts,
      ...json,
    },
  },
  gc: {
    args: [],
    summary: 'drop cache entries that no lock file or recent run references',
    options: {
      'keep-runs': { type: 'string', arg: 'N', help: 'keep the results of the last N runs as well' },
      'dry-run': { type: 'boolean', help: 'list what it would keep and remove; remove nothing' },
      compact: { type: 'boolean', help: 'then rewrite the cache file compacted, so the disk space comes back' },
      ...cache,
      ...json,
    },
  },
  show: {
    args: ['<pipeline>', '<stage>'],
    summary: "one stage's record, params, outputs, metrics and log tail",
    options: { ...pipelineOpts, ...json },
  },
  report: {
    args: ['<pipeline>'],
    summary: 'write the self-contained HTML report',
    options: {
      out: { type: 'string', short: 'o', arg: 'FILE', help: 'where to write it (default .podium/reports/<name>.html)' },
      compare: { type: 'string', arg: '<lock-file|git-rev>', help: 'compare with another run' },
      ...pipelineOpts,
      ...json,
    },
  },
  metrics: {
    args: ['<pipeline>'],
    summary: 'the metrics of every stage as a table',
    options: { csv: { type: 'boolean', help: 'print CSV instead of a table' }, ...pipelineOpts, ...json },
  },
  cat: {
    args: ['<pipeline>', '<stage>', '[output]'],
    summary: "one output's bytes, to stdout or a file",
    options: {
      out: { type: 'string', short: 'o', arg: 'FILE', help: 'write to this file instead of stdout' },
      ...pipelineOpts,
    },
  },
  completion: {
    args: ['[bash]'],
    summary: 'print a bash completion script: source <(npx podium completion)',
    options: {},
  },
} satisfies Record<string, VerbSpec>;

export type Verb = keyof typeof VERBS;

const EXIT_CODES = `Exit codes: 0 success, 1 a stage failed, verification found differences or the cache is unusable,
2 invalid pipeline or usage, 130/143 interrupted by SIGINT/SIGTERM (finished stages are kept).`;

export function globalUsage(): string {
  const width = Math.max(...Object.keys(VERBS).map((v) => v.length));
  return [
    'usage: podium <verb> [options]',
    '',
    ...Object.entries(VERBS)
      .filter(([, s]) => !('hidden' in s))
      .map(([v, s]) => `  ${v.padEnd(width)}  ${s.summary}`),
    '',
    'podium <verb> --help lists its options; podium --version prints the version.',
    'A matrix point can be named by its index: fit@0 is the first point of stage fit.',
    EXIT_CODES,
  ].join('\n');
}

export function verbUsageLine(verb: Verb): string {
  return `usage: podium ${verb}${VERBS[verb].args.map((a) => ` ${a}`).join('')} [options]`;
}

export function verbHelp(verb: Verb): string {
  const opts: Record<string, OptionSpec> = { ...VERBS[verb].options, ...always };
  const flags = Object.entries(opts).map(
    ([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`, o.help] as const,
  );
  const width = Math.max(...flags.map(([f]) => f.length));
  return [
    verbUsageLine(verb),
    '',
    `${VERBS[verb].summary}.`,
    '',
    'options:',
    ...flags.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`),
    '',
    EXIT_CODES,
  ].join('\n');
}

export type Values = Record<string, string | string[] | boolean | undefined>;

/** Parses one verb's arguments; a mistake is a UsageError naming the flag, with the verb's usage line. */
export function parseVerb(verb: Verb, args: string[]): { values: Values; positionals: string[] } {
  const spec: Record<string, OptionSpec> = { ...VERBS[verb].options, ...always };
  const options = Object.fromEntries(
    Object.entries(spec).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usage(verb, parseArgsMessage(e as Error & { code?: string }, Object.keys(spec)));
  }
  const values = parsed.values as Values;
  const positionals = parsed.positionals;
  if (values.help) return { values, positionals };
  const required = VERBS[verb].args.filter((a) => a.startsWith('<'));
  if (positionals.length < required.length) throw usage(verb, `missing ${required[positionals.length]}`, true);
  if (positionals.length > VERBS[verb].args.length)
    throw usage(verb, `unexpected argument "${positionals[VERBS[verb].args.length]}"`);
  checkValues(values);
  return { values, positionals };
}

/** parseArgs' messages, in podium's words: the flag, and what was probably meant. */
function parseArgsMessage(e: Error & { code?: string }, names: string[]): string {
  const flag = /'(-[^' ]*)/.exec(e.message)?.[1] ?? '';
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const hint = flag.startsWith('--') ? didYouMean(flag.slice(2), names).replace(/"([^"]+)"/, '"--$1"') : '';
    return `unknown option ${flag}${hint}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing/.test(e.message)) return `${flag} needs a value`;
    if (/ambiguous/.test(e.message)) return `${flag} needs a value (one that starts with "-" is written ${flag}=VALUE)`;
    if (/does not take an argument/.test(e.message)) return `${flag} takes no value`;
  }
  return e.message;
}

function usage(verb: Verb, message: string, full = false): UsageError {
  return new UsageError(
    `${message}\n${full ? verbHelp(verb) : `${verbUsageLine(verb)}   (podium ${verb} --help lists the options)`}`,
  );
}

/** Values with a fixed shape are checked here, before anything is loaded or opened. */
function checkValues(v: Values): void {
  const oneOf = (flag: string, allowed: readonly string[]): void => {
    const x = v[flag];
    if (typeof x === 'string' && !allowed.includes(x))
      throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${x}"${didYouMean(x, allowed)}`);
  };
  const integer = (flag: string, min: number, what: string): void => {
    const x = v[flag];
    if (typeof x === 'string' && !(/^\d+$/.test(x.trim()) && Number(x) >= min))
      throw new UsageError(`--${flag} must be ${what}, got "${x}"`);
  };
  oneOf('backend', BACKENDS);
  oneOf('format', DAG_FORMATS);
  oneOf('executor', EXECUTORS);
  integer('jobs', 1, 'a positive integer');
  integer('max-jobs', 1, 'a positive integer');
  integer('keep-runs', 0, 'a whole number (0 or more)');
  const lease = v['lease-timeout'];
  if (typeof lease === 'string' && !(lease.trim() !== '' && Number.isFinite(Number(lease)) && Number(lease) >= 0)) {
    throw new UsageError(`--lease-timeout must be a number of seconds (0 or more), got "${lease}"`);
  }
  if (typeof v.gpus === 'string' && !/^\s*[\w-]+(\s*,\s*[\w-]+)*\s*$/.test(v.gpus))
    throw new UsageError(`--gpus must be a comma-separated list of device ids, e.g. 0,1, got "${v.gpus}"`);
}

/**
 * A bash completion script made from the table above, so it cannot fall behind the verbs and
 * flags: verbs first, then the verb's flags, the fixed values of --backend and --format, and
 * file names for everything else.
 */
export function bashCompletion(): string {
  const shown = Object.entries(VERBS).filter(([, s]) => !('hidden' in s));
  const cases = shown.map(
    ([verb, spec]) =>
      `    ${verb}) opts="${Object.keys({ ...spec.options, ...always })
        .map((o) => `--${o}`)
        .join(' ')}" ;;`,
  );
  return `# podium bash completion: source <(npx podium completion)
_podium() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${shown.map(([v]) => v).join(' ')} help --help --version" -- "$cur"))
    return
  fi
  case "$prev" in
    --backend) COMPREPLY=($(compgen -W "${BACKENDS.join(' ')}" -- "$cur")); return ;;
    --format|-f) COMPREPLY=($(compgen -W "${DAG_FORMATS.join(' ')}" -- "$cur")); return ;;
  esac
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -o filenames -F _podium podium
`;
}

/** The verb named by argv[0], or a UsageError with "did you mean". */
export function verbOf(name: string): Verb {
  if (name in VERBS) return name as Verb;
  throw new UsageError(`unknown verb "${name}"${didYouMean(name, Object.keys(VERBS))}\n${globalUsage()}`);
}
