// The command line as a user meets it: version, per-verb help, usage errors that name the flag,
// "did you mean", internal errors without a stack unless --verbose, --set overrides and the
// matrix-point alias. Every case runs the real, compiled binary.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, commandPipeline, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

const STACK = /\n\s+at /;

describe('help and version', () => {
  it('--version prints the package version', async () => {
    project = new Project();
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = await project.cli('--version');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it("run --help prints run's own options, one line each, and exits 0", async () => {
    project = new Project();
    const r = await project.cli('run', '--help');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^usage: podium run <pipeline> \[options\]/);
    for (const flag of [
      '--dry-run',
      '--only ID',
      '--from ID',
      '--force ID',
      '--jobs N',
      '--gpus 0,1',
      '--lease-timeout SECONDS',
      '--no-report',
      '--set STAGE.FIELD=VALUE',
      '--cache DIR',
      '--backend auto|tensorflow|webgpu|wasm|cpu',
      '--quiet',
      '--json',
      '--verbose',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^ +(-\\w, )?${flag.replace(/[|.]/g, '\\$&')} +\\S`, 'm'));
    }
    expect(r.stdout).not.toContain('--keep-runs'); // gc's, not run's
    expect((await project.cli('help', 'gc')).stdout).toMatch(/--keep-runs N +keep the results/);
  });

  it("a verb without its file prints that verb's usage and exits 2; no verb prints the verbs", async () => {
    project = new Project();
    const r = await project.cli('run');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('podium: missing <pipeline>');
    expect(r.stderr).toContain('usage: podium run <pipeline> [options]');
    expect(r.stderr).toContain('--dry-run');
    const none = await project.cli();
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/^ {2}dag +the stage graph/m);
  });
});

describe('bash completion', () => {
  it("completes verbs, the verb's own flags, fixed values and file names", async () => {
    project = new Project();
    project.write('pipe.json', '{}');
    const complete = async (...words: string[]): Promise<string> => {
      const script = `source <(node ${JSON.stringify(CLI)} completion bash); COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _podium; echo "\${COMPREPLY[*]}"`;
      return (await execa('bash', ['-c', script], { cwd: project.dir })).stdout;
    };
    expect(await complete('podium', 'st')).toBe('status');
    expect(await complete('podium', 'run', 'p.json', '--jo')).toBe('--jobs');
    expect(await complete('podium', 'gc', '--k')).toBe('--keep-runs');
    expect(await complete('podium', 'status', '--k')).toBe('');
    expect(await complete('podium', 'run', 'p.json', '--backend', 'wa')).toBe('wasm');
    expect(await complete('podium', 'dag', 'p.json', '--format', 'm')).toBe('mermaid');
    expect(await complete('podium', 'run', 'pi')).toBe('pipe.json');
  });
});

describe('usage errors: the flag, the accepted values, exit 2, no stack', () => {
  it.each([
    [['rn', 'p.json'], 'podium: unknown verb "rn" (did you mean "run"?)'],
    [['run', 'p.json', '--jbos', '2'], 'podium: unknown option --jbos (did you mean "--jobs"?)'],
    [['status', 'p.json', '--dry-run'], 'podium: unknown option --dry-run'],
    [['run', 'p.json', '--jobs', 'abc'], 'podium: --jobs must be a positive integer, got "abc"'],
    [['run', 'p.json', '--jobs', '0'], 'podium: --jobs must be a positive integer, got "0"'],
    [['run', 'p.json', '--jobs'], 'podium: --jobs needs a value'],
    [
      ['run', 'p.json', '--backend', 'gpu'],
      'podium: --backend must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu" (did you mean "cpu"?)',
    ],
    [
      ['run', 'p.json', '--lease-timeout', 'soon'],
      'podium: --lease-timeout must be a number of seconds (0 or more), got "soon"',
    ],
    [['gc', '--keep-runs=-1'], 'podium: --keep-runs must be a whole number (0 or more), got "-1"'],
    [
      ['gc', '--keep-runs', '-1'],
      'podium: --keep-runs needs a value (one that starts with "-" is written --keep-runs=VALUE)',
    ],
    [['status', 'p.json', '--json=yes'], 'podium: --json takes no value'],
    [['dag', 'p.json', '--format', 'svg'], 'podium: --format must be one of text, mermaid, dot, got "svg"'],
    [['run', 'p.json', 'extra'], 'podium: unexpected argument "extra"'],
  ])('%j', async (args, message) => {
    project = new Project();
    project.write('p.json', commandPipeline({ a: { run: 'true' } }));
    const r = await project.cli(...args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stderr).not.toMatch(STACK);
  });

  it('an unknown stage id suggests the one meant', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ build: { run: 'true' }, test: { run: 'true', inputs: { b: 'build' } } }));
    const r = await project.cli('run', 'p.json', '--only', 'biuld');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      'podium: --only biuld: no stage with that id in test (did you mean "build"?) (stages: build, test)',
    );
  });
});

describe('environment errors', () => {
  it('a backend that is not installed fails its stage in one actionable line, not as an internal error', async () => {
    project = new Project();
    project.write('p.json', readFileSync(join(import.meta.dirname, '..', '..', 'pipelines', 'ci-small.json'), 'utf8'));
    // tfjs-node is not a dependency (it downloads libtensorflow at install), so 'tensorflow' is absent here.
    const r = await project.cli('run', 'p.json', '--only', 'tiny@0', '--set', 'tiny.params.backend=tensorflow');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /✗ failed +tiny@lr=0\.05 \([\d.]+s\): backend 'tensorflow' is not available \(@tensorflow\/tfjs-node-gpu: not installed; .*or use backend 'auto' or 'wasm'\.\n/,
    );
    expect(r.stderr).not.toMatch(/internal error|\n\s+\|?\s*at /);
  });
});

describe('internal errors', () => {
  it('print one line and a hint without --verbose, the stack with it', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ a: { run: 'echo hi > a.txt', outs: ['a.txt'] } }));
    expect((await project.run()).exitCode).toBe(0);
    // Writing into a folder that does not exist is not a case the verb anticipates.
    const r = await project.cli('cat', 'p.json', 'a', '--out', 'no/such/dir/a.txt');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^podium: internal error: ENOENT[^\n]*\n\(rerun with --verbose for the stack\)$/);
    const v = await project.cli('cat', 'p.json', 'a', '--out', 'no/such/dir/a.txt', '--verbose');
    expect(v.stderr).toMatch(STACK);
  });

  it('inside a stage: the failure line and its log, the stack only with --verbose', async () => {
    const { humanLogger } = await import('../../runner/events.js');
    const render = (verbose: boolean): string => {
      let out = '';
      humanLogger(
        {
          write: (t: string) => {
            out += t;
            return true;
          },
        } as NodeJS.WritableStream,
        verbose,
      )({
        type: 'stage-done',
        report: {
          id: 'x',
          kind: 'export',
          status: 'failed',
          key: null,
          reason: 'internal error: boom',
          durationMs: 5,
          failure: {
            reason: 'internal',
            message: 'internal error: boom',
            logTail: [
              'reading predictions',
              'TypeError: boom',
              '    at decode (file:///p/x.js:1:2)',
              '    at run (file:///p/y.js:3:4)',
            ],
          },
        },
      });
      return out;
    };
    expect(render(false)).toBe(
      '✗ failed    x (0.0s): internal error: boom\n    | reading predictions\n    | TypeError: boom\n    | (rerun with --verbose for the stack)\n',
    );
    expect(render(true)).toContain('    |     at decode (file:///p/x.js:1:2)\n');
  });

  it('a stage given bytes that are not predictions says so in one line (input error, exit 2)', async () => {
    project = new Project();
    project.write('p.json', {
      name: 'ie',
      seed: 1,
      stages: {
        a: { uses: 'command', params: { run: 'echo garbage > predictions', outs: ['predictions'] } },
        x: { uses: 'export', inputs: { predictions: 'a' }, params: { format: 'csv', path: 'out/x.csv' } },
      },
    });
    const r = await project.run();
    expect(r.exitCode).toBe(2);
    expect(r.out.stages[1].failure).toEqual({ reason: 'input' });
    expect(r.stderr).toMatch(
      /✗ failed +x \([\d.]+s\): predictions "a:predictions" are not a predictions artifact \(no header\); the input must be a multicrop-predict or fuse stage$/m,
    );
  });
});

describe('--set', () => {
  it('overrides a param for this run: the lock records it, the no-op memo does not skip a changed override', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({ a: { run: 'echo "$GREETING" > a.txt', outs: ['a.txt'], env: { GREETING: 'hello' } } }),
    );
    expect((await project.run()).status).toEqual({ a: 'ran' });
    expect(project.read('a.txt')).toBe('hello\n');
    await new Promise((r) => setTimeout(r, 2100)); // past the memo's racy-mtime window
    expect((await project.run()).status).toEqual({ a: 'cached' });
    const set = await project.run('p.json', '--set', 'a.params.env.GREETING=bonjour');
    expect(set.status).toEqual({ a: 'ran' });
    expect(project.read('a.txt')).toBe('bonjour\n');
    expect(project.json('p.lock.json').stages.a.params.env).toEqual({ GREETING: 'bonjour' });
    const keyOf = async (...args: string[]): Promise<string> =>
      JSON.parse((await project.cli('status', 'p.json', '--json', ...args)).stdout).stages[0].key;
    expect(await keyOf('--set', 'a.params.env.GREETING=bonjour')).toBe(project.json('p.lock.json').stages.a.key);
    expect(await keyOf()).not.toBe(project.json('p.lock.json').stages.a.key);
    // Without the override the file's value is back: the memo (made with it) must not vouch for
    // the run, which finds hello's result in the cache and puts its output back.
    await new Promise((r) => setTimeout(r, 2100));
    const back = await project.run();
    expect(back.status).toEqual({ a: 'cached' });
    expect(back.out.stages[0].key).toBe(await keyOf());
    expect(project.read('a.txt')).toBe('hello\n');
    expect(project.json('p.lock.json').stages.a.params.env).toEqual({ GREETING: 'hello' });
  });

  it('a bad override is a located usage error naming --set', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ a: { run: 'true' } }));
    const r = await project.cli('run', 'p.json', '--set', 'a.params.outs=3');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /p\.json:\d+:\d+ \/stages\/a\/params\/outs: expected array, got number 3 \(set by --set a\.params\.outs=3\)/,
    );
  });
});

describe('matrix points by index', () => {
  it('fit@N names a point wherever an id is taken: --only, --force, --from, show, cat', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        fit: {
          run: 'echo "$LR" > "fit-$LR.txt"',
          outs: ['fit-${LR}.txt'],
          matrix: { env: [{ LR: '0.1' }, { LR: '0.2' }] },
        },
      }),
    );
    const only = await project.run('p.json', '--only', 'fit@1');
    expect(only.status).toEqual({ 'fit@env={"LR":"0.2"}': 'ran' });
    const all = await project.run();
    expect(all.status).toEqual({ 'fit@env={"LR":"0.1"}': 'ran', 'fit@env={"LR":"0.2"}': 'cached' });
    expect((await project.run('p.json', '--force', 'fit@0')).status).toEqual({
      'fit@env={"LR":"0.1"}': 'ran',
      'fit@env={"LR":"0.2"}': 'cached',
    });
    expect((await project.run('p.json', '--from', 'fit@1')).status).toEqual({ 'fit@env={"LR":"0.2"}': 'ran' });
    expect((await project.cli('show', 'p.json', 'fit@1')).stdout).toMatch(/^fit@env=\{"LR":"0.2"\} \(command\): fresh/);
    expect((await project.cli('cat', 'p.json', 'fit@0')).stdout).toBe('0.1');
    const out = await project.cli('run', 'p.json', '--only', 'fit@2');
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain('podium: --only fit@2: fit has 2 matrix points, fit@0 to fit@1');
    project.write('q.json', commandPipeline({ one: { run: 'true' } }));
    expect((await project.cli('run', 'q.json', '--force', 'one@0')).stderr).toContain(
      'podium: --force one@0: one has no matrix; name it one',
    );
  });
});
