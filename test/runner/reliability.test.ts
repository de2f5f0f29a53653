// Nothing lost, nothing wrong: gc beside a run, tampered blobs on every read path, signals,
// stale leases, and caches that cannot be written. Each case drives the real CLI.
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { open } from 'lmdb';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, commandPipeline, Project, waitUntil } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

const isRoot = process.getuid?.() === 0;

/** Overwrites a stored blob's bytes through LMDB itself, as a disk error or a meddler would. */
async function forge(cacheDir: string, digest: string, bytes: Buffer): Promise<void> {
  const env = open({ path: cacheDir, maxDbs: 16 });
  await env.openDB({ name: 'blob-data', encoding: 'binary' }).put(digest, bytes);
  await env.close();
}

/** Flips one byte in the middle of a stored blob: same size, other content. */
async function flipByte(cacheDir: string, digest: string): Promise<void> {
  const env = open({ path: cacheDir, maxDbs: 16 });
  const data = env.openDB({ name: 'blob-data', encoding: 'binary' });
  const bytes = Buffer.from(data.get(digest) as Buffer);
  bytes[bytes.length >> 1]! ^= 0xff;
  await data.put(digest, bytes);
  await env.close();
}

/** A command that says it started (file `started`), then waits until the test writes `go`. */
const heldUntilGo = (then: string): string => `touch started; while [ ! -f go ]; do sleep 0.05; done; ${then}`;

const cache = (): string => join(project.dir, '.podium/cache');

describe('gc beside a run', () => {
  it('never removes what a live run committed: gc is refused while the run holds the cache', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        first: { run: 'echo one > one.txt', outs: ['one.txt'] },
        second: { run: heldUntilGo('cat one.txt > two.txt'), inputs: { after: 'first' }, outs: ['two.txt'] },
      }),
    );
    const run = project.spawn(['run', 'p.json', '--json']);
    await waitUntil(() => existsSync(join(project.dir, 'started')), 20_000, 'second stage to start');
    // first's record is committed but in no lock file or run log yet: the old gc swept it.
    const gc = await project.cli('gc', '--keep-runs', '0');
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr.trim().split('\n')).toHaveLength(1);
    expect(gc.stderr).toMatch(/the cache is in use by podium run .*p\.json \(pid \d+/);
    writeFileSync(join(project.dir, 'go'), '');
    expect((await run).exitCode).toBe(0);
    expect((await project.cli('verify', 'p.json')).exitCode).toBe(0);
    expect((await project.cli('gc', '--keep-runs', '0')).exitCode).toBe(0);
    expect((await project.run()).status).toEqual({ first: 'cached', second: 'cached' });
  });
});

describe('tampered blobs are never used', () => {
  it('on the restore path: the corrupt out is dropped and its stage re-executes', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo genuine > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const digest = project.json('p.lock.json').stages.s.outputs['s.txt'];
    await forge(cache(), digest, Buffer.from('forgery\n'));
    writeFileSync(join(project.dir, 's.txt'), 'edited\n'); // so the run must restore it
    const r = await project.run();
    expect(r.exitCode).toBe(0);
    expect(r.status).toEqual({ s: 'ran' });
    expect(r.stderr).toContain(`warning: s: blob ${digest.slice(0, 12)} no longer hashes to its key`);
    expect(project.read('s.txt')).toBe('genuine\n');
    expect((await project.cli('verify', 'p.json')).exitCode).toBe(0);
  });

  it('on the read path: a stage never reads a corrupt input; its producer re-executes first', async () => {
    project = new Project();
    for (let i = 0; i < 3; i++) {
      mkdirSync(join(project.dir, 'data/train/c'), { recursive: true });
      await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 60 * i, g: 90, b: 30 } } })
        .jpeg()
        .toFile(join(project.dir, `data/train/c/${i}.jpg`));
    }
    project.write('p.json', {
      name: 'read',
      seed: 3,
      stages: {
        images: { uses: 'dataset', params: { root: 'data' } },
        decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 40 } },
        aug: {
          uses: 'augment',
          inputs: { images: 'decoded' },
          params: { level: 1, crop: 32, previewImages: 3, previewAugmentations: 2 },
        },
      },
    });
    expect((await project.run()).exitCode).toBe(0);
    const lock = project.json('p.lock.json');
    const decodeKey = lock.stages.decoded.key;
    // One decoded image: a ref of decode's record that augment reads for its preview.
    const env = open({ path: cache(), maxDbs: 16 });
    const record = env.openDB({ name: 'records' }).get(decodeKey) as { refs: string[] };
    await env.close();
    const victim = record.refs[0]!;
    await flipByte(cache(), victim);

    const r = await project.run('p.json', '--force', 'aug');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`aug: blob ${victim.slice(0, 12)} no longer hashes to its key`);
    expect(r.stderr).toContain('re-executing decoded');
    // Same inputs again, so the same preview: the forgery never reached it.
    expect(project.json('p.lock.json').stages.aug.outputs).toEqual(lock.stages.aug.outputs);
    const v = await project.cli('verify', 'p.json');
    expect(v.stdout).toContain('read: reproducible');
    expect(v.exitCode).toBe(0);
  });
});

describe('signals', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} stops within a second, kills the stage's process tree, keeps finished stages, exits ${code}`, async () => {
      project = new Project();
      project.write(
        'p.json',
        commandPipeline({
          first: { run: 'echo one > one.txt', outs: ['one.txt'] },
          // The first attempt blocks in an inner shell (a grandchild of the runner); the rerun is quick.
          slow: {
            run: "[ -f once ] || { touch once; sh -c 'echo $$ > inner.pid; sleep 30'; }; echo late > late.txt",
            inputs: { after: 'first' },
            outs: ['late.txt'],
          },
        }),
      );
      const run = project.spawn(['run', 'p.json', '--json']);
      await waitUntil(
        () =>
          existsSync(join(project.dir, 'inner.pid')) &&
          readFileSync(join(project.dir, 'inner.pid'), 'utf8').endsWith('\n'),
        20_000,
        'slow stage to start',
      );
      const inner = Number(readFileSync(join(project.dir, 'inner.pid'), 'utf8'));
      const sent = Date.now();
      run.kill(signal);
      const r = await run;
      expect(Date.now() - sent).toBeLessThan(1500);
      expect(r.exitCode).toBe(code);
      expect(String(r.stderr)).toContain('interrupted: kept 1 finished stage');
      expect(String(r.stderr)).not.toMatch(/internal error|\n\s+at /);
      expect(JSON.parse(String(r.stdout)).stages.find((s: { id: string }) => s.id === 'slow').failure).toEqual({
        reason: 'interrupted',
      });
      await waitUntil(() => !alive(inner), 2000, `the stage's inner shell ${inner} outlived the interrupt`);
      expect(existsSync(join(project.dir, 'late.txt'))).toBe(false);
      const rerun = await project.run();
      expect(rerun.status).toEqual({ first: 'cached', slow: 'ran' });
    });
  }

  it('SIGINT while waiting for another process to finish a stage stops the waiting run', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ slow: { run: heldUntilGo('echo x > x.txt'), outs: ['x.txt'] } }));
    const holder = project.spawn(['run', 'p.json']);
    await waitUntil(() => existsSync(join(project.dir, 'started')), 20_000, 'holder to start');
    const waiter = project.spawn(['run', 'p.json']);
    let said = '';
    waiter.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
    });
    await waitUntil(() => said.includes('waiting for'), 20_000, 'the second run to wait');
    expect(said).toMatch(/warning: slow: waiting for stage slow of .*p\.json held by pid \d+ since \d{4}-/);
    const sent = Date.now();
    waiter.kill('SIGINT');
    expect((await waiter).exitCode).toBe(130);
    expect(Date.now() - sent).toBeLessThan(1500);
    writeFileSync(join(project.dir, 'go'), '');
    expect((await holder).exitCode).toBe(0);
  });
});

describe('leases', () => {
  it('a lease left by a dead process whose PID now belongs to another is not waited for', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo s > s.txt', outs: ['s.txt'] } }));
    const dry = await project.run('p.json', '--dry-run');
    const key = dry.out.stages[0].key as string;
    // PID 1 is alive, but it is not the process that took this lease (another start time).
    const env = open({ path: cache(), maxDbs: 16 });
    await env.openDB({ name: 'leases' }).put(key, {
      pid: 1,
      host: (await import('node:os')).hostname(),
      since: Date.now() - 60_000,
      start: 'another-boot:1',
      what: 'stage s of p.json',
    });
    await env.close();
    const started = Date.now();
    const r = await project.run('p.json', '--lease-timeout', '30');
    expect(r.exitCode).toBe(0);
    expect(r.status).toEqual({ s: 'ran' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up waiting for a live holder after --lease-timeout, saying who holds it', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ slow: { run: heldUntilGo('echo x > x.txt'), outs: ['x.txt'] } }));
    const holder = project.spawn(['run', 'p.json']);
    await waitUntil(() => existsSync(join(project.dir, 'started')), 20_000, 'holder to start');
    const r = await project.run('p.json', '--lease-timeout', '1');
    expect(r.exitCode).toBe(1);
    expect(r.out.stages[0].failure).toEqual({ reason: 'stage' });
    expect(r.out.stages[0].reason).toMatch(
      /^gave up after 1 s waiting for stage slow of .*p\.json held by pid \d+ since .*; stop that process, or wait longer with --lease-timeout SECONDS$/,
    );
    writeFileSync(join(project.dir, 'go'), '');
    expect((await holder).exitCode).toBe(0);
  });
});

describe('caches that cannot be used', () => {
  it('a cache path that is a file: one line naming it, exit 1', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo s > s.txt', outs: ['s.txt'] } }));
    project.write('not-a-dir', 'x');
    const r = await project.cli('run', 'p.json', '--cache', 'not-a-dir');
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(
      `podium: cache ${join(project.dir, 'not-a-dir')} is not a folder (a file is in the way); remove it or choose another with --cache DIR`,
    );
  });

  it.skipIf(!isRoot)('a read-only cache: one line naming it, exit 1', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo s > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const dir = cache();
    execFileSync('mount', ['--bind', dir, dir]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
      project.write('p.json', commandPipeline({ s: { run: 'echo t > s.txt', outs: ['s.txt'] } }));
      const r = await project.cli('run', 'p.json');
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim()).toBe(
        `podium: cache ${dir} is not writable (read-only file system); fix its permissions or choose another with --cache DIR`,
      );
    } finally {
      execFileSync('umount', [dir]);
    }
  });

  it.skipIf(!isRoot)(
    'disk full: one line, finished stages kept, no lease left behind, a rerun with space succeeds',
    async () => {
      project = new Project();
      const mnt = join(project.dir, 'small');
      mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
      try {
        project.write(
          'p.json',
          commandPipeline({
            a: { run: 'head -c 1000000 /dev/zero | tr "\\0" a > a.bin', outs: ['a.bin'] },
            b: { run: 'head -c 2500000 /dev/urandom > b.bin', inputs: { after: 'a' }, outs: ['b.bin'] },
          }),
        );
        const full = await project.cli('run', 'p.json', '--cache', 'small/cache');
        expect(full.exitCode).toBe(1);
        const lines = full.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('podium:'));
        expect(lines).toEqual([
          expect.stringMatching(
            /^podium: writing to the cache .*small\/cache failed \(no space left on its disk: \d+ KiB free\); free disk space and run again \(finished stages are kept\)$/,
          ),
        ]);
        expect(full.stderr).not.toMatch(/\n\s+at |Commit failed|Input\/output error/);
        execFileSync('mount', ['-o', 'remount,size=16m', mnt]);
        const rerun = await project.run('p.json', '--cache', 'small/cache', '--lease-timeout', '5');
        expect(rerun.exitCode).toBe(0);
        expect(rerun.status).toEqual({ a: 'cached', b: 'ran' });
      } finally {
        execFileSync('umount', [mnt]);
      }
    },
  );
});

describe('verify', () => {
  it('re-hashes outs on disk: an in-place edit that keeps size, mtime and inode is found and repaired', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ s: { run: 'echo genuine > s.txt', outs: ['s.txt'] } }));
    await project.run();
    const path = join(project.dir, 's.txt');
    const before = statSync(path);
    writeFileSync(path, 'GENUINE\n');
    utimesSync(path, before.atime, before.mtime);
    expect(statSync(path).ino).toBe(before.ino);
    const r = await project.cli('verify', 'p.json');
    expect(r.stdout).toContain(
      'repaired   s.txt (stage s): its content on disk differed from the lock; restored from the cache',
    );
    expect(r.exitCode).toBe(0);
    expect(project.read('s.txt')).toBe('genuine\n');
  });

  it("decodes every image again instead of trusting decode's per-image index", async () => {
    project = new Project();
    for (let i = 0; i < 2; i++) {
      mkdirSync(join(project.dir, 'data/train/c'), { recursive: true });
      await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 100 * i, g: 90, b: 30 } } })
        .jpeg()
        .toFile(join(project.dir, `data/train/c/${i}.jpg`));
    }
    project.write('p.json', {
      name: 'idx',
      seed: 3,
      stages: {
        images: { uses: 'dataset', params: { root: 'data' } },
        decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 40 } },
      },
    });
    expect((await project.run()).exitCode).toBe(0);
    // Swap the two images' index entries: a stage trusting them would produce other bytes.
    const env = open({ path: cache(), maxDbs: 16 });
    const index = env.openDB({ name: 'index' });
    const entries = [...index.getRange()].filter((e) => String(e.key).startsWith('decode:'));
    expect(entries).toHaveLength(2);
    await index.put(entries[0]!.key, entries[1]!.value);
    await index.put(entries[1]!.key, entries[0]!.value);
    await env.close();
    const r = await project.cli('verify', 'p.json');
    expect(r.stdout).toContain('idx: reproducible');
    expect(r.exitCode).toBe(0);
  });

  it('compares metrics too: a metric that is not reproducible fails verify', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        s: {
          run: 'echo same > s.txt; echo "{\\"score\\": $(od -An -N2 -tu2 /dev/urandom)}" > m.json',
          outs: ['s.txt'],
          metrics: 'm.json',
        },
      }),
    );
    await project.run();
    const r = await project.cli('verify', 'p.json', '--json');
    const report = JSON.parse(r.stdout);
    expect(r.exitCode).toBe(1);
    expect(report.stages[0].differing.map((d: { name: string }) => d.name)).toContain('metric score');
  });
});
