import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { CacheCorruption, CacheReplaced, type StageRecord } from '../../cache/store.js';

let dir: string;
let store: LmdbStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function fresh(chunkBytes?: number): LmdbStore {
  dir = mkdtempSync(join(tmpdir(), 'podium-store-'));
  return (store = new LmdbStore(dir, chunkBytes === undefined ? {} : { chunkBytes }));
}

const record = (key: Digest, outputs: Record<string, Digest>): StageRecord => ({
  key,
  kind: 'command',
  version: 1,
  stageId: 's',
  outputs,
  refs: [],
  metrics: { acc: 0.5 },
  startedAt: new Date(0).toISOString(),
  durationMs: 3,
  backend: null,
  logTail: ['hi'],
});

describe('LmdbStore', () => {
  it('stores blobs under the sha256 of their bytes, once', async () => {
    const s = fresh();
    const bytes = Buffer.from('hello world');
    const d = await s.putBlob(bytes);
    expect(d).toBe(sha256(bytes));
    expect(await s.putBlob(bytes)).toBe(d);
    expect(s.getBlob(d, { verify: true })?.toString()).toBe('hello world');
    expect(s.blobDigests()).toEqual([d]);
    expect(s.getBlob(sha256('absent'))).toBeUndefined();
  });

  it('chunks large blobs and reassembles them', async () => {
    const s = fresh(1000);
    const bytes = Buffer.alloc(4321);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 255;
    const d = await s.putBlob(bytes);
    expect(s.blobInfo(d)).toEqual({ size: 4321, chunks: 5 });
    expect(s.getBlob(d, { verify: true })!.equals(bytes)).toBe(true);
    expect(s.deleteBlob(d)).toBe(4321);
    expect(s.getBlob(d)).toBeUndefined();
  });

  it('never returns a tampered blob unless asked not to verify', async () => {
    const s = fresh();
    const d = await s.putBlob(Buffer.from('genuine'));
    const raw = open({ path: dir, maxDbs: 16 });
    raw.openDB({ name: 'blob-data', encoding: 'binary' }).putSync(d, Buffer.from('forgery'));
    expect(() => s.getBlob(d)).toThrow(CacheCorruption);
    expect(() => s.getBlob(d, { verify: true })).toThrow(CacheCorruption);
    expect(s.getBlob(d, { verify: false })?.toString()).toBe('forgery');
    await raw.close();
  });

  it('with strictReads, an absent blob is a CacheCorruption to repair unless the read is optional', async () => {
    const dirStrict = join(dir, 'strict');
    const s = new LmdbStore(dirStrict, { strictReads: true });
    try {
      const absent = sha256('never stored');
      expect(() => s.getBlob(absent)).toThrow(/blob [0-9a-f]{12} is missing from the cache/);
      expect(() => s.getBlob(absent)).toThrow(CacheCorruption);
      expect(s.getBlob(absent, { optional: true })).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('refuses to register a run in a cache folder that was replaced (gc --compact) after it was opened', async () => {
    const s = fresh();
    await s.putBlob(Buffer.from('x'));
    const copy = join(dir, '..', `${dir.split('/').pop()}-copy`);
    mkdirSync(copy);
    await s.compactInto(copy);
    renameSync(dir, `${dir}-old`);
    renameSync(copy, dir);
    try {
      expect(() => s.beginRun('r', 'podium run p.json')).toThrow(CacheReplaced);
      const reopened = new LmdbStore(dir);
      expect(reopened.beginRun('r', 'podium run p.json')).toBeUndefined();
      expect(reopened.getBlob(sha256('x'))?.toString()).toBe('x');
      await reopened.close();
    } finally {
      rmSync(`${dir}-old`, { recursive: true, force: true });
    }
  });

  it('commits a record only when its blobs exist', async () => {
    const s = fresh();
    const d = await s.putBlob(Buffer.from('out'));
    const key = sha256('key');
    expect(() => s.commitRecord(record(key, { o: sha256('missing') }))).toThrow(/not stored/);
    expect(s.getRecord(key)).toBeUndefined();
    s.commitRecord(record(key, { o: d }));
    expect(s.getRecord(key)?.metrics).toEqual({ acc: 0.5 });
  });

  it('treats a corrupt record as a miss and says so once, without removing it (reading never writes)', async () => {
    const s = fresh();
    const key = sha256('key');
    const raw = open({ path: dir, maxDbs: 8 });
    raw.openDB({ name: 'records' }).putSync(key, { key, kind: 'command', outputs: 'garbage' });
    expect(s.getRecord(key)).toBeUndefined();
    expect(s.getRecord(key)).toBeUndefined();
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(
      /^cache record [0-9a-f]{12} is corrupt \(.*\); treated as missing: the next run recomputes it, podium gc removes it$/,
    );
    expect(s.recordKeys()).toEqual([key]);
    // The writer that recomputes it replaces it.
    const d = await s.putBlob(Buffer.from('out'));
    s.commitRecord(record(key, { o: d }));
    expect(s.getRecord(key)?.outputs).toEqual({ o: d });
    await raw.close();
  });

  it('keeps index entries as {blobs, meta} objects; an older string value or a malformed one reads as a miss', async () => {
    const s = fresh();
    const [a, b] = [sha256('a'), sha256('b')];
    s.setIndex('two', { blobs: [a, b], meta: { row: { epoch: 1 }, from: 'x y' } });
    expect(() => s.setIndex('bad', { blobs: ['nope'], meta: {} } as never)).toThrow(/invalid index entry under bad/);
    await s.flush();
    const raw = open({ path: dir, maxDbs: 8 });
    await raw.openDB({ name: 'index', encoding: 'string' }).put('old', `${a} 96 96 sharp`);
    await raw.openDB({ name: 'index' }).put('shapeless', { blobs: a, meta: 'x' });
    expect(s.getIndex('two')).toEqual({ blobs: [a, b], meta: { row: { epoch: 1 }, from: 'x y' } });
    expect(s.getIndex('old')).toBeUndefined();
    expect(s.getIndex('shapeless')).toBeUndefined();
    expect(s.getIndex('absent')).toBeUndefined();
    expect(new Map(s.indexEntries())).toEqual(
      new Map([
        ['old', undefined],
        ['shapeless', undefined],
        ['two', { blobs: [a, b], meta: { row: { epoch: 1 }, from: 'x y' } }],
      ]),
    );
    await raw.close();
  });

  it('grants a lease to one process and frees the lease of a dead one', async () => {
    const s = fresh();
    const key = sha256('k');
    expect(s.tryLease(key)).toBe(true);
    s.releaseLease(key);
    const raw = open({ path: dir, maxDbs: 8 });
    const leases = raw.openDB({ name: 'leases' });
    // pid 1 is alive (init): held by someone else.
    leases.putSync(key, { pid: 1, host: (await import('node:os')).hostname(), since: Date.now() });
    expect(s.tryLease(key)).toBe(false);
    // A pid that cannot exist: its holder is gone, so the lease is free.
    leases.putSync(key, { pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), since: Date.now() });
    expect(s.tryLease(key)).toBe(true);
    await raw.close();
  });
});
