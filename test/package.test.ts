// The package as a user gets it: `npm pack`, installed from the tarball into a fresh folder
// outside this repository, then `npx podium run` on a pipeline of that folder's own, the typed
// API imported from an .mjs file and type-checked from a .ts file. Proof that podium works in
// someone else's project, not only in this checkout. Needs `npm run build` first (npm test does).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};
let dir: string;
let install: { all: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podium-package-'));
  // --ignore-scripts: `prepare` would rebuild; the build under test is the one already made.
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
  const tarball = join(dir, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0]!.filename);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'someone-elses-project', private: true, type: 'module' }),
  );
  // The npm cache is warm from this checkout's install; metadata npm ci did not fetch comes from the registry.
  const flags = ['--no-audit', '--no-fund', '--no-package-lock'];
  const offline = await execa('npm', ['install', '--offline', ...flags, tarball], {
    cwd: dir,
    reject: false,
    all: true,
  });
  install =
    offline.exitCode === 0
      ? offline
      : await execa('npm', ['install', '--prefer-offline', ...flags, tarball], { cwd: dir, all: true });
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`the packed package (${PKG.name})`, () => {
  it('installs without an engine warning on this Node', () => {
    expect(install.all).not.toMatch(/EBADENGINE/);
  });

  it('`npx podium run` runs a pipeline of the project it is installed in and writes its lock', async () => {
    writeFileSync(
      join(dir, 'p.json'),
      JSON.stringify({
        name: 'mine',
        seed: 3,
        stages: {
          greet: { uses: 'command', params: { run: 'echo hello > greet.txt', outs: ['greet.txt'] } },
          shout: {
            uses: 'command',
            inputs: { text: 'greet' },
            params: { run: 'tr a-z A-Z < greet.txt > shout.txt', deps: ['greet.txt'], outs: ['shout.txt'] },
          },
        },
      }),
    );
    const r = await execa('npx', ['--no-install', 'podium', 'run', 'p.json', '--no-report'], {
      cwd: dir,
      reject: false,
      all: true,
    });
    expect(r.exitCode, r.all).toBe(0);
    expect(readFileSync(join(dir, 'shout.txt'), 'utf8')).toBe('HELLO\n');
    const lock = JSON.parse(readFileSync(join(dir, 'p.lock.json'), 'utf8')) as {
      pipeline: string;
      stages: Record<string, { key: string; outputs: Record<string, string> }>;
    };
    expect(lock.pipeline).toBe('mine');
    expect(Object.keys(lock.stages).sort()).toEqual(['greet', 'shout']);
    expect(lock.stages.shout!.key).toMatch(/^[0-9a-f]{64}$/);
    const version = await execa('npx', ['--no-install', 'podium', '--version'], { cwd: dir });
    expect(version.stdout).toBe(PKG.version);
  });

  it('exports run, status and loadPipeline to an ES module', async () => {
    writeFileSync(
      join(dir, 'api.mjs'),
      [
        `import { run, status, loadPipeline, UsageError } from '${PKG.name}';`,
        `const pipeline = loadPipeline('p.json');`,
        `const summary = await run('p.json');`,
        `const report = await status('p.json');`,
        `let bad = null;`,
        `try { loadPipeline('missing.json'); } catch (e) { bad = e instanceof UsageError ? e.diagnostics[0].message : String(e); }`,
        `console.log(JSON.stringify({ stages: pipeline.stages.map((s) => s.id), ran: summary.stages.map((s) => s.status), status: report.stages.map((s) => s.status), bad }));`,
      ].join('\n'),
    );
    const r = await execa('node', ['api.mjs'], { cwd: dir, reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stages: ['greet', 'shout'],
      ran: ['cached', 'cached'],
      status: ['fresh', 'fresh'],
      bad: 'file not found',
    });
  });

  it('is typed: a TypeScript consumer type-checks against the emitted declarations, and a misuse is caught', async () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    writeFileSync(
      join(dir, 'consumer.ts'),
      [
        `import { run, status, type RunSummary, type StatusReport } from '${PKG.name}';`,
        `const s: Promise<RunSummary> = run('p.json', { jobs: 2, set: ['greet.params.run=true'] });`,
        `const t: Promise<StatusReport> = status('p.json');`,
        `export { s, t };`,
      ].join('\n'),
    );
    const ok = await execa(tsc, ['-p', dir], { cwd: dir, reject: false, all: true });
    expect(ok.exitCode, ok.all).toBe(0);
    writeFileSync(
      join(dir, 'consumer.ts'),
      `import { run } from '${PKG.name}';\nexport const s = run('p.json', { jobs: 'two' });\n`,
    );
    const bad = await execa(tsc, ['-p', dir], { cwd: dir, reject: false, all: true });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.all).toMatch(/consumer\.ts.*jobs|Type 'string' is not assignable to type 'number'/s);
  });
});
