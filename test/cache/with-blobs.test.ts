// Store.withBlobs against the real LMDB: the views hold the stored bytes, damage is caught, and
// the read transaction is released between calls so another process's writer is never held up.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { CacheCorruption } from '../../cache/store.js';

let dir: string;
let store: LmdbStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function fresh(chunkBytes?: number): LmdbStore {
  dir = mkdtempSync(join(tmpdir(), 'podium-views-'));
  return (store = new LmdbStore(dir, chunkBytes === undefined ? {} : { chunkBytes }));
}

/** Bytes that differ from blob to blob and position to position. */
function pattern(n: number, salt: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + salt * 7 + (i >> 8)) & 255;
  return b;
}

/** This process's line of LMDB's reader table: its snapshot's txn id, or '-' when it holds none. */
function ourReaderTxn(s: LmdbStore): string | undefined {
  const env = (s as unknown as { env: { readerList(): string } }).env;
  const line = env
    .readerList()
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[0] === String(process.pid));
  return line?.trim().split(/\s+/)[2];
}

/** Puts one blob from another process; returns its digest once that process has committed and exited. */
function putFromAnotherProcess(path: string, bytes: Buffer): Digest {
  const digest = sha256(bytes);
  const script = `
    const { open } = require('lmdb');
    const env = open({ path: ${JSON.stringify(path)}, maxDbs: 16, noSubdir: false });
    const data = env.openDB({ name: 'blob-data', encoding: 'binary' });
    const meta = env.openDB({ name: 'blob-meta' });
    env.transactionSync(() => { data.putSync('${digest}', Buffer.from('${bytes.toString('base64')}', 'base64')); meta.putSync('${digest}', { size: ${bytes.length}, chunks: 1 }); });
    env.close().then(() => process.exit(0));`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: process.cwd(), timeout: 20_000, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`writer process failed (${r.status ?? r.signal}): ${r.stderr}`);
  return digest;
}

describe('Store.withBlobs', () => {
  it('gives views equal to the stored bytes, all valid together for the whole call', async () => {
    const s = fresh();
    const blobs = [pattern(196_620, 1), pattern(10, 2), pattern(70_000, 3), pattern(196_620, 4)];
    const digests = await Promise.all(blobs.map((b) => s.putBlob(b)));
    // The same digest twice in one batch is two views of the same bytes.
    const asked = [...digests, digests[0]!];
    const seen = s.withBlobs(asked, (views) => {
      // Read every view only after all were made: an earlier one must not have been overwritten by a later read.
      return views.map((v) => Buffer.from(v));
    });
    expect(seen.map((b) => sha256(b))).toEqual(asked);
    expect(seen[2]!.equals(blobs[2]!)).toBe(true);
  });

  it('returns what fn returns, reads nested calls apart, and reuses its memory from call to call', async () => {
    const s = fresh();
    const [a, b] = [pattern(50_000, 5), pattern(50_000, 6)];
    const [da, db] = await Promise.all([s.putBlob(a), s.putBlob(b)]);
    const outer = s.withBlobs([da], ([va]) => {
      const inner = s.withBlobs([db], ([vb]) => Buffer.from(vb!).equals(b));
      return inner && Buffer.from(va!).equals(a);
    });
    expect(outer).toBe(true);
    const first = s.withBlobs([da], ([v]) => v!.buffer);
    const second = s.withBlobs([db], ([v]) => v!.buffer);
    expect(second).toBe(first); // the same arena, no allocation per call
  });

  it('hands out views of the memory map itself for blobs of 16 MiB and more, and copies chunked blobs', async () => {
    const s = fresh(20 * 1024 * 1024);
    const big = pattern(17 * 1024 * 1024, 7);
    const chunked = pattern(41 * 1024 * 1024, 8);
    const [dBig, dChunked] = [await s.putBlob(big), await s.putBlob(chunked)];
    expect(s.blobInfo(dChunked)!.chunks).toBe(3);
    s.withBlobs([dBig, dChunked], ([vBig, vChunked]) => {
      expect((vBig!.buffer as { isSharedMap?: boolean }).isSharedMap).toBe(true);
      expect(sha256(vBig!)).toBe(dBig);
      expect(Buffer.from(vChunked!.buffer, vChunked!.byteOffset, vChunked!.byteLength).equals(chunked)).toBe(true);
    });
  });

  it('throws CacheCorruption for a tampered, truncated or missing blob', async () => {
    const s = fresh();
    const good = await s.putBlob(pattern(4096, 9));
    const tampered = await s.putBlob(pattern(4096, 10));
    const truncated = await s.putBlob(pattern(4096, 11));
    const raw = open({ path: dir, maxDbs: 16 });
    const data = raw.openDB({ name: 'blob-data', encoding: 'binary' });
    data.putSync(tampered, pattern(4096, 12));
    data.putSync(truncated, pattern(4000, 11));
    await raw.close();
    const read = (d: Digest): unknown => s.withBlobs([good, d], (views) => views.length);
    expect(read(good)).toBe(2);
    expect(() => read(tampered)).toThrow(CacheCorruption);
    expect(() => read(tampered)).toThrow(/no longer hashes/);
    expect(() => read(truncated)).toThrow(/truncated/);
    expect(() => read(sha256('never stored'))).toThrow(/missing/);
    // A failed call released its transaction too.
    expect(ourReaderTxn(s)).toBe('-');
  });

  it('holds a snapshot only while fn runs: another process commits meanwhile, and the next call sees its blob', async () => {
    const s = fresh();
    const mine = await s.putBlob(pattern(100_000, 13));
    let written: Digest | undefined;
    s.withBlobs([mine], ([view]) => {
      expect(ourReaderTxn(s)).toMatch(/^\d+$/); // a snapshot is pinned during the call
      // LMDB's writer does not wait for readers: the other process commits and exits while we read.
      written = putFromAnotherProcess(dir, pattern(30_000, 14));
      expect(sha256(view!)).toBe(mine);
    });
    // Released at once, not at the next turn of the event loop: nothing pins old pages between batches.
    expect(ourReaderTxn(s)).toBe('-');
    expect(s.withBlobs([written!], ([v]) => sha256(v!))).toBe(written);
  });
});
