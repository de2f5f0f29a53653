// The StageStore a cluster job gives its stage: blobs from and to the shared store through a
// job-local mirror, hash-checked; the index shared by every handle of the job.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../cache/canonical.js';
import { DirRemoteStore } from '../../cache/remote-store.js';
import { openStageStore } from '../../cache/shared-stage-store.js';
import { CacheCorruption } from '../../cache/store.js';

const dirs: string[] = [];
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'podium-shared-stage-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function job(): { remote: DirRemoteStore; args: { remote: string; mirror: string; index: string; filesDir: string } } {
  const remoteDir = fresh();
  const scratch = fresh();
  return {
    remote: new DirRemoteStore(remoteDir),
    args: {
      remote: remoteDir,
      mirror: join(scratch, 'blobs'),
      index: join(scratch, 'index.jsonl'),
      filesDir: join(remoteDir, 'files'),
    },
  };
}

describe('the shared StageStore', () => {
  it('queued blobs are readable at once and reach the shared store on flush', async () => {
    const { remote, args } = job();
    const store = openStageStore(args);
    const bytes = Buffer.from('a checkpoint');
    const d = store.queueBlob(bytes);
    expect(store.getBlob(d)).toEqual(bytes);
    expect(store.blobInfo(d)).toEqual({ size: bytes.length, chunks: 1 });
    expect(await remote.has(d)).toBe(false);
    await store.flush();
    expect(await remote.get(d)).toEqual(bytes);
    expect(await store.putBlob(Buffer.from('now'))).toBe(sha256('now'));
    expect(await remote.has(sha256('now'))).toBe(true);
  });

  it('reads what the job was not handed from the store, checked; a damaged or missing blob is corruption', async () => {
    const { remote, args } = job();
    const good = await remote.put(Buffer.from('input'));
    const bad = await remote.put(Buffer.from('tampered'));
    writeFileSync(join(args.remote, 'blobs', bad.slice(0, 2), bad), 'tampereD');
    const store = openStageStore(args);
    expect(store.getBlob(good)).toEqual(Buffer.from('input'));
    expect(() => store.getBlob(bad)).toThrow(CacheCorruption);
    expect(() => store.getBlob(sha256('absent'))).toThrow(/missing from the shared store/);
    expect(store.getBlob(sha256('absent'), { optional: true })).toBeUndefined();
    await expect(store.prefetch([sha256('absent')])).rejects.toThrow(CacheCorruption);
    expect(store.withBlobs([good], (views) => Buffer.from(views[0]!).toString())).toBe('input');
  });

  it('every handle of a job (a worker opens its own through the opener) sees the same index', async () => {
    const { args } = job();
    const main = openStageStore(args);
    const worker = openStageStore(main.opener.args);
    const entry = { blobs: [sha256('w'), sha256('o')], meta: { epoch: 3 } };
    worker.setIndex('finetune:k:2', entry);
    expect(main.getIndex('finetune:k:2')).toEqual(entry);
    main.setIndex('other', { blobs: [], meta: {} });
    expect(
      worker
        .indexEntries()
        .map(([k]) => k)
        .sort(),
    ).toEqual(['finetune:k:2', 'other']);
    expect(main.getIndex('nothing')).toBeUndefined();
  });

  it('publish puts what only the mirror holds into the store; hashPath hashes files', async () => {
    const { remote, args } = job();
    const store = openStageStore(args);
    const d = store.queueBlob(Buffer.from('progress'));
    await store.publish([d]);
    expect(await remote.has(d)).toBe(true);
    const file = join(fresh(), 'f.txt');
    writeFileSync(file, 'content');
    expect(store.hashPath(file)).toBe(sha256('content'));
    expect(store.hashPath(join(args.mirror, 'nope'))).toBeUndefined();
  });
});
