// The shared store's directory implementation: content addressing, verification on read, and many
// processes writing the same and different blobs at once without a torn or lost file.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../cache/canonical.js';
import { DirRemoteStore, openRemote } from '../../cache/remote-store.js';
import { CacheCorruption, type IndexEntry, type StageRecord } from '../../cache/store.js';

const DIST_STORE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cache', 'remote-store.js');
const dirs: string[] = [];
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'podium-remote-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const record = (key: Digest, outputs: Record<string, Digest>): StageRecord => ({
  key,
  kind: 'command',
  version: 1,
  stageId: 's',
  outputs,
  refs: [],
  metrics: { n: 1 },
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 5,
  backend: null,
  logTail: [],
});

describe('DirRemoteStore', () => {
  it('files blobs by sha256 in fan-out folders and reads back the same bytes', async () => {
    const dir = fresh();
    const store = new DirRemoteStore(dir);
    const bytes = Buffer.from('hello shared store');
    const d = await store.put(bytes);
    expect(d).toBe(sha256(bytes));
    expect(readFileSync(join(dir, 'blobs', d.slice(0, 2), d))).toEqual(bytes);
    expect(await store.has(d)).toBe(true);
    expect(await store.get(d)).toEqual(bytes);
    expect(await store.get(sha256('absent'))).toBeUndefined();
    const listed: Digest[] = [];
    for await (const x of store.list()) listed.push(x);
    expect(listed).toEqual([d]);
    // No temporary file is left behind.
    expect(readdirSync(join(dir, 'blobs', d.slice(0, 2)))).toEqual([d]);
  });

  it('a damaged blob is reported as corruption, moved aside, never returned; the next put repairs it', async () => {
    const dir = fresh();
    const store = new DirRemoteStore(dir);
    const bytes = Buffer.from('precious bytes');
    const d = await store.put(bytes);
    const path = join(dir, 'blobs', d.slice(0, 2), d);
    writeFileSync(path, Buffer.from('precious bytez'));
    await expect(store.get(d)).rejects.toThrow(CacheCorruption);
    expect(await store.has(d)).toBe(false);
    expect(readdirSync(join(dir, 'corrupt'))).toHaveLength(1);
    await store.put(bytes);
    expect(await store.get(d)).toEqual(bytes);
  });

  it('records round-trip; a damaged or misfiled record is corruption, not a result', async () => {
    const dir = fresh();
    const store = new DirRemoteStore(dir);
    const out = await store.put(Buffer.from('out'));
    const key = sha256('key');
    await store.putRecord(record(key, { out }));
    expect(await store.getRecord(key)).toEqual(record(key, { out }));
    const other = sha256('other key');
    mkdirSync(join(dir, 'records', other.slice(0, 2)), { recursive: true });
    writeFileSync(
      join(dir, 'records', other.slice(0, 2), `${other}.json`),
      readFileSync(join(dir, 'records', key.slice(0, 2), `${key}.json`)),
    );
    await expect(store.getRecord(other)).rejects.toThrow(/filed under/);
    writeFileSync(join(dir, 'records', key.slice(0, 2), `${key}.json`), '{"key": 1');
    await expect(store.getRecord(key)).rejects.toThrow(CacheCorruption);
    expect(await store.getRecord(key)).toBeUndefined();
  });

  it('saved progress round-trips by stage key; a damaged file is corruption', async () => {
    const dir = fresh();
    const store = new DirRemoteStore(dir);
    const key = sha256('stage');
    expect(await store.getProgress(key)).toBeUndefined();
    const entries: Array<[string, IndexEntry]> = [
      [`finetune:${key}:0`, { blobs: [sha256('w'), sha256('o')], meta: { loss: 1 } }],
    ];
    await store.putProgress(key, entries);
    expect(await store.getProgress(key)).toEqual(entries);
    writeFileSync(join(dir, 'progress', key.slice(0, 2), `${key}.json`), '[["a"]]');
    await expect(store.getProgress(key)).rejects.toThrow(/saved progress .* is damaged/);
    expect(await store.getProgress(key)).toBeUndefined();
  });

  it('refuses a name that is not a digest, and a URL it cannot serve', async () => {
    const store = new DirRemoteStore(fresh());
    await expect(store.get('../../etc/passwd' as Digest)).rejects.toThrow(/not a sha256 digest/);
    expect(() => openRemote('s3://bucket/podium')).toThrow(/only a folder/);
  });

  it('eight processes writing overlapping blobs at once leave every blob whole', async () => {
    const dir = fresh();
    // Each writer puts 40 blobs of 64 KiB–1 MiB: 20 shared by all writers, 20 of its own.
    const script = `
      import { DirRemoteStore } from ${JSON.stringify(DIST_STORE)};
      const store = new DirRemoteStore(process.argv[1]);
      const me = Number(process.argv[2]);
      const blob = (tag, n) => Buffer.alloc(64 * 1024 * (1 + (n % 16)), tag + ':' + n);
      const jobs = [];
      for (let i = 0; i < 20; i++) jobs.push(store.put(blob('shared', i)), store.put(blob('own' + me, i)));
      await Promise.all(jobs);
    `;
    const writers = Array.from({ length: 8 }, (_, i) =>
      execa('node', ['--input-type=module', '-e', script, dir, String(i)]),
    );
    for (const w of await Promise.all(writers)) expect(w.exitCode).toBe(0);
    const store = new DirRemoteStore(dir);
    const listed: Digest[] = [];
    for await (const d of store.list()) listed.push(d);
    expect(listed).toHaveLength(20 + 8 * 20);
    for (const d of listed) expect(sha256((await store.get(d))!)).toBe(d);
    // Temporary files all renamed: none left in any fan-out folder.
    for (const fan of readdirSync(join(dir, 'blobs')))
      expect(readdirSync(join(dir, 'blobs', fan)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
