import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze } from '../../runner/analyze.js';
import { formatDiagnostic } from '../../runner/diagnostics.js';
import { stageKinds } from '../../stages/registry.js';
import { Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

function errorsOf(text: string): string[] {
  project = new Project();
  const file = project.write('p.json', text);
  const r = analyze(file, project.dir);
  if (r.ok) throw new Error('expected the pipeline to be invalid');
  return r.errors.map((d) => formatDiagnostic(d, false).replace(`${file}:`, 'p.json:'));
}

const valid = (stages: string): string => `{
  "name": "t",
  "stages": {
${stages}
  }
}`;

describe('pipeline analysis', () => {
  it('names file, line:col, pointer and expectation for a wrong param type', () => {
    const errs = errorsOf(valid(`    "a": { "uses": "command", "params": { "run": "true", "outs": "x.txt" } }`));
    expect(errs).toEqual(['p.json:4:66 /stages/a/params/outs: expected array, got string "x.txt"']);
  });

  it('reports an unknown stage kind with the kinds it knows', () => {
    const errs = errorsOf(valid(`    "a": { "uses": "comand", "params": { "run": "true" } }`));
    expect(errs).toEqual([
      `p.json:4:20 /stages/a/uses: unknown stage kind "comand" (did you mean "command"?) (expected one of: ${[...stageKinds.keys()].join(', ')})`,
    ]);
    expect([...stageKinds.keys()]).toContain('command');
  });

  it('reports an unknown input reference', () => {
    const errs = errorsOf(
      valid(`    "a": { "uses": "command", "inputs": { "x": "nope" }, "params": { "run": "true" } }`),
    );
    expect(errs).toEqual(['p.json:4:48 /stages/a/inputs/x: unknown input reference "nope": no stage with that id']);
  });

  it('reports a duplicate stage id at the second occurrence', () => {
    const errs = errorsOf(
      valid(
        `    "a": { "uses": "command", "params": { "run": "true" } },\n    "a": { "uses": "command", "params": { "run": "false" } }`,
      ),
    );
    expect(errs).toEqual(['p.json:5:5 /stages/a: duplicate key "a"']);
  });

  it('refuses prototype keys', () => {
    const errs = errorsOf(
      valid(`    "a": { "uses": "command", "params": { "run": "true", "__proto__": { "x": 1 } } }`),
    );
    expect(errs).toEqual(['p.json:4:58 /stages/a/params/__proto__: key "__proto__" is not allowed']);
  });

  it('prints the cycle path', () => {
    const errs = errorsOf(
      valid(
        [
          `    "a": { "uses": "command", "inputs": { "x": "c" }, "params": { "run": "true" } },`,
          `    "b": { "uses": "command", "inputs": { "x": "a" }, "params": { "run": "true" } },`,
          `    "c": { "uses": "command", "inputs": { "x": "b" }, "params": { "run": "true" } },`,
          `    "d": { "uses": "command", "inputs": { "x": "c" }, "params": { "run": "true" } }`,
        ].join('\n'),
      ),
    );
    expect(errs).toEqual(['p.json:4:41 /stages/a/inputs: cycle: a → b → c → a']);
  });

  it('reports JSON syntax errors in words, where the mistake is, one at a time', () => {
    // A trailing comma: at the comma.
    expect(errorsOf('{\n  "name": "t",\n  "stages": { "a": { "uses": "command", } }\n}')).toEqual([
      'p.json:3:39 /: invalid JSON: a comma before a closing bracket or brace (JSON allows no trailing comma)',
    ]);
    // A missing comma: after the value it should follow, not at the next line's key.
    expect(errorsOf('{\n  "name": "t",\n  "seed": 3\n  "stages": {}\n}')).toEqual([
      'p.json:3:11 /: invalid JSON: missing comma after "seed": 3',
    ]);
    expect(errorsOf("{\n  'name': 't'\n}")).toEqual([
      'p.json:2:3 /: invalid JSON: strings and keys need double quotes, not single quotes',
    ]);
    expect(errorsOf('{\n  "name": "t",\n  "stages": {}\n')).toEqual([
      'p.json:3:14 /: invalid JSON: missing "}" after "stages": {}',
    ]);
  });

  it('reports unknown properties', () => {
    const errs = errorsOf(valid(`    "a": { "uses": "command", "param": {} }`));
    expect(errs).toEqual([
      'p.json:4:31 /stages/a/param: unknown property "param" (did you mean "params"?) (expected one of: uses, description, inputs, params, matrix)',
    ]);
  });

  it('reports every bad matrix entry and a missing required param', () => {
    const errs = errorsOf(
      valid(
        [
          `    "a": { "uses": "command", "params": {} },`,
          `    "b": { "uses": "command", "params": { "run": "true" }, "matrix": { "nope": [1] } },`,
          `    "c": { "uses": "command", "params": { "run": "true" }, "matrix": { "outs": [["a"], 3] } }`,
        ].join('\n'),
      ),
    );
    expect(errs).toContain('p.json:4:41 /stages/a/params: missing required property "run"');
    expect(errs).toContain(
      'p.json:5:72 /stages/b/matrix/nope: matrix names "nope", which is not a param of "command" (expected one of: run, deps, outs, env, metrics)',
    );
    expect(errs).toContain('p.json:6:88 /stages/c/matrix/outs/1: matrix value 3: expected array, got number 3');
  });

  it('expands a matrix into stable ids, and a downstream stage receives every point', () => {
    project = new Project();
    const file = project.write(
      'p.json',
      valid(
        [
          `    "train": { "uses": "command", "params": { "run": "true", "env": { "A": "1" } }, "matrix": { "run": ["echo 1", "echo 2"], "deps": [[], ["x"]] } },`,
          `    "fuse": { "uses": "command", "inputs": { "models": "train" }, "params": { "run": "true" } }`,
        ].join('\n'),
      ),
    );
    const r = analyze(file, project.dir);
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
    const ids = r.value.stages.map((s) => s.id);
    expect(ids).toEqual([
      'train@run=echo 1,deps=[]',
      'train@run=echo 1,deps=["x"]',
      'train@run=echo 2,deps=[]',
      'train@run=echo 2,deps=["x"]',
      'fuse',
    ]);
    expect(r.value.byId.get('train@run=echo 2,deps=["x"]')!.params).toEqual({
      run: 'echo 2',
      deps: ['x'],
      outs: [],
      env: { A: '1' },
      metrics: null,
    });
    expect(r.value.byId.get('fuse')!.inputs.models).toEqual({ ids: ids.slice(0, 4), many: true });
  });
});

describe('did you mean', () => {
  it('suggests the stage an unknown input reference probably meant, and no stage when none is close', () => {
    const errs = errorsOf(
      valid(
        [
          `    "prepare": { "uses": "command", "params": { "run": "true" } },`,
          `    "a": { "uses": "command", "inputs": { "x": "prepair", "y": "zzz" }, "params": { "run": "true" } }`,
        ].join('\n'),
      ),
    );
    expect(errs).toEqual([
      'p.json:5:48 /stages/a/inputs/x: unknown input reference "prepair": no stage with that id (did you mean "prepare"?)',
      'p.json:5:64 /stages/a/inputs/y: unknown input reference "zzz": no stage with that id',
    ]);
  });

  it('suggests the param an unknown param name probably meant, abbreviations included', () => {
    const errs = errorsOf(
      valid(
        `    "a": { "uses": "finetune", "inputs": { "images": "a" }, "params": { "learningRate": 0.1, "epoch": 2 } }`,
      ),
    );
    expect(errs.find((e) => e.includes('"learningRate"'))).toMatch(
      /\/stages\/a\/params\/learningRate: unknown property "learningRate" \(did you mean "lr"\?\)/,
    );
    expect(errs.find((e) => e.includes('"epoch"'))).toMatch(/unknown property "epoch" \(did you mean "epochs"\?\)/);
  });
});

describe('--set overrides', () => {
  const pipeline = valid(
    [
      `    "a": { "uses": "command", "params": { "run": "true", "env": { "LR": "0.1" } } },`,
      `    "fit": { "uses": "command", "inputs": { "x": "a" }, "params": { "run": "true" }, "matrix": { "env": [{ "LR": "0.1" }, { "LR": "0.2" }] } }`,
    ].join('\n'),
  );
  const analyzeWith = (...set: string[]) => {
    project = new Project();
    const file = project.write('p.json', pipeline);
    const r = analyze(file, project.dir, undefined, set);
    return { file, r };
  };

  it('applies values parsed as JSON, else taken as strings, before validation and defaults', () => {
    const { r } = analyzeWith('a.params.env.LR="0.3"', 'a.params.outs=["o.txt"]', 'a.params.run=echo hi', 'seed=7');
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
    expect(r.value.byId.get('a')!.params).toMatchObject({ run: 'echo hi', env: { LR: '0.3' }, outs: ['o.txt'] });
    expect(r.value.seed).toBe(7);
  });

  it('validates an override like the file, located, naming the --set', () => {
    const { file, r } = analyzeWith('a.params.outs=3');
    if (r.ok) throw new Error('expected an error');
    expect(r.errors.map((d) => formatDiagnostic(d, false).replace(`${file}:`, 'p.json:'))).toEqual([
      'p.json:4:41 /stages/a/params/outs: expected array, got number 3 (set by --set a.params.outs=3)',
    ]);
    // 0.3 parses as JSON, so it is a number; env wants strings ('"0.3"' on the shell).
    const num = analyzeWith('a.params.env.LR=0.3').r;
    expect(num.ok ? '' : num.errors[0]!.message).toBe(
      `expected string, got number 0.3 (set by --set a.params.env.LR=0.3; for the string write --set 'a.params.env.LR="0.3"')`,
    );
  });

  it('names an unknown stage or param with a suggestion, and a malformed --set', () => {
    const bad = (set: string): string => {
      const { r } = analyzeWith(set);
      return r.ok ? '' : r.errors.map((d) => d.message).join('\n');
    };
    expect(bad('fti.params.run=x')).toBe(
      '--set fti.params.run=x: no stage "fti" (did you mean "fit"?) (stages: a, fit)',
    );
    expect(bad('a.params.rnu=x')).toBe(
      'unknown property "rnu" (did you mean "run"?) (expected one of: run, deps, outs, env, metrics) (set by --set a.params.rnu=x)',
    );
    expect(bad('a.params.run')).toBe(
      '--set a.params.run: expected STAGE.FIELD...=VALUE, e.g. --set train.params.lr=0.02',
    );
    expect(bad('a.params.run.x=1')).toBe(
      '--set a.params.run.x=1: /stages/a/params/run is "true", not an object to set "x" in',
    );
  });

  it('gives each matrix point its index, the quoting-free alias', () => {
    const { r } = analyzeWith();
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
    expect(r.value.stages.filter((s) => s.baseId === 'fit').map((s) => [s.id, s.point])).toEqual([
      ['fit@env={"LR":"0.1"}', 0],
      ['fit@env={"LR":"0.2"}', 1],
    ]);
    expect(r.value.byId.get('a')!.point).toBeUndefined();
  });
});

describe('backend resolution', () => {
  it("a stage takes its own backend, else --backend, else the pipeline's; it is part of the params (and so of the key)", () => {
    project = new Project();
    const file = project.write('p.json', {
      name: 't',
      backend: 'cpu',
      stages: {
        d: { uses: 'dataset', params: { format: 'synthetic' } },
        a: { uses: 'decode', inputs: { dataset: 'd' } },
        inherit: { uses: 'finetune', inputs: { images: 'a' }, params: { model: 'tiny' } },
        own: { uses: 'finetune', inputs: { images: 'a' }, params: { model: 'tiny', backend: 'wasm' } },
      },
    });
    const backends = (override?: string): unknown[] => {
      const r = analyze(file, project.dir, override);
      if (!r.ok) throw new Error(r.errors[0]!.message);
      return ['inherit', 'own'].map((id) => r.value.byId.get(id)!.params.backend);
    };
    expect(backends()).toEqual(['cpu', 'wasm']);
    expect(backends('auto')).toEqual(['auto', 'wasm']);
    const bad = analyze(file, project.dir, 'gpu');
    expect(bad.ok ? '' : bad.errors[0]!.message).toBe(
      '--backend gpu: expected one of auto, tensorflow, webgpu, wasm, cpu',
    );
  });
});

describe('the CLI on an invalid pipeline', () => {
  it('exits 2, prints each problem with a squiggle, and writes nothing', async () => {
    project = new Project();
    project.write('p.json', valid(`    "a": { "uses": "command", "params": { "run": 5 } }`));
    const r = await project.cli('run', 'p.json');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('p.json:4:50 /stages/a/params/run: expected string or array, got number 5');
    expect(r.stderr).toMatch(/\n {4}\s*"a": .*\n\s+~/);
    expect(existsSync(join(project.dir, '.podium'))).toBe(false);
    expect(existsSync(join(project.dir, 'p.lock.json'))).toBe(false);
  });

  it('exits 2 for a missing file and for bad usage', async () => {
    project = new Project();
    const missing = await project.cli('run', 'nope.json');
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('nope.json:1:1 /: file not found');
    expect((await project.cli('frobnicate')).exitCode).toBe(2);
    expect((await project.cli('run', 'p.json', '--bogus')).exitCode).toBe(2);
  });
});
