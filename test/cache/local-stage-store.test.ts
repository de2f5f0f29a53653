import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { stageStoreOf } from '../../cache/local-stage-store.js';
import { CacheCorruption } from '../../cache/store.js';

let dir: string;
let store: LmdbStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function fresh(): LmdbStore {
  dir = mkdtempSync(join(tmpdir(), 'podium-stage-store-'));
  return (store = new LmdbStore(join(dir, '.podium', 'cache')));
}

describe('the local StageStore', () => {
  it('puts files beside the cache folder, where the synthetic dataset has always gone', () => {
    const s = stageStoreOf(fresh());
    expect(s.filesDir).toBe(join(dir, '.podium'));
    expect(stageStoreOf(store!)).toBe(s);
  });

  it('reads strictly: a missing blob is CacheCorruption unless the read is optional, a tampered one always', async () => {
    const lmdb = fresh(); // opened without strictReads: the stage's view is strict anyway
    const s = stageStoreOf(lmdb);
    const d = await s.putBlob(Buffer.from('bytes'));
    const tampered = await s.putBlob(Buffer.from('genuine'));
    // Tampered before this process reads anything: lmdb-js keeps a read snapshot for a while.
    const raw = open({ path: lmdb.path, maxDbs: 16, noSubdir: false });
    raw.openDB({ name: 'blob-data', encoding: 'binary' }).putSync(tampered, Buffer.from('forgery'));
    try {
      expect(s.getBlob(d)?.toString()).toBe('bytes');
      const absent = sha256('absent');
      expect(() => s.getBlob(absent)).toThrow(CacheCorruption);
      expect(s.getBlob(absent, { optional: true })).toBeUndefined();
      expect(() => s.getBlob(tampered)).toThrow(/no longer hashes to its key/);
      expect(() => s.getBlob(tampered, { optional: true })).toThrow(CacheCorruption);
      expect(() => s.withBlobs([d, tampered], () => 0)).toThrow(CacheCorruption);
    } finally {
      await raw.close();
    }
  });

  it('hands withBlobs the bytes of each digest, in order', async () => {
    const s = stageStoreOf(fresh());
    const a = s.queueBlob(Buffer.from('first'));
    const b = s.queueBlob(Buffer.from('second'));
    await s.flush();
    expect(s.withBlobs([b, a, b], (views) => views.map((v) => Buffer.from(v).toString()))).toEqual([
      'second',
      'first',
      'second',
    ]);
  });

  it('hashes files through the stat memo, and says undefined for a path that is not there', () => {
    const lmdb = fresh();
    const s = stageStoreOf(lmdb);
    const file = join(dir, 'f.txt');
    writeFileSync(file, 'content');
    expect(s.hashPath(file)).toBe(sha256(Buffer.from('content')));
    expect(s.hashPath(join(dir, 'nope'))).toBeUndefined();
  });

  it('opens in a worker thread through its opener, without the thread naming the implementation', async () => {
    const lmdb = fresh();
    const s = stageStoreOf(lmdb);
    expect(s.opener.module).toMatch(/^file:.*\/dist\/cache\/local-stage-store\.js$/);
    // The same call decode's worker threads make (stages/contract.ts openStoreFrom), from a thread.
    const contract = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'stages', 'contract.js');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.contract).then(async ({ openStoreFrom }) => {
        const own = await openStoreFrom(workerData.opener);
        const digest = own.queueBlob(Buffer.from('from a thread'));
        own.setIndex('thread', { blobs: [digest], meta: { by: 'worker' } });
        await own.close();
        parentPort.postMessage(digest);
      });`;
    const digest = await new Promise<Digest>((res, rej) => {
      const w = new Worker(code, { eval: true, workerData: { contract, opener: s.opener } });
      w.once('message', res);
      w.once('error', rej);
    });
    expect(s.getBlob(digest)?.toString()).toBe('from a thread');
    expect(s.getIndex('thread')).toEqual({ blobs: [digest], meta: { by: 'worker' } });
  });
});
