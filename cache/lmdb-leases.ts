// Who is using a cache: a lease per stage being computed (two runs never compute one stage
// twice), one per live run or verify, and one for gc, which sweeps only when no run holds the
// cache. A lease names its process by PID and start time (process-identity.ts), so the lease of
// a killed process is free, even when its PID was reused.
import { hostname } from 'node:os';
import { statSync } from 'node:fs';
import type { Database } from 'lmdb';
import type { Digest } from './canonical.js';
import { isSameProcessAlive, processStart } from './process-identity.js';
import { CacheReplaced, type Lease } from './store.js';

const RUN_PREFIX = 'run:';
const GC_KEY = 'gc';

export class LmdbLeases {
  private readonly host = hostname();
  private readonly me: Lease = {
    pid: process.pid,
    host: this.host,
    since: Date.now(),
    start: processStart(process.pid),
  };

  /**
   * `txn` runs a synchronous write transaction; `folderIno` is the cache folder's inode when
   * it was opened (gc --compact replaces the folder: see beginRun).
   */
  constructor(
    private readonly db: Database<Lease, string>,
    private readonly txn: <T>(fn: () => T) => T,
    private readonly path: string,
    private readonly folderIno: number,
  ) {}

  tryLease(key: Digest, what?: string): boolean {
    return this.txn(() => {
      const held = this.db.get(key);
      if (held && held.pid !== process.pid && this.isAlive(held)) return false;
      void this.db.put(key, { ...this.me, since: Date.now(), ...(what ? { what } : {}) });
      return true;
    });
  }

  releaseLease(key: Digest): void {
    this.txn(() => {
      if (this.db.get(key)?.pid === process.pid) void this.db.remove(key);
    });
  }

  leaseHolder(key: Digest): Lease | undefined {
    const held = this.db.get(key);
    return held && held.pid !== process.pid && this.isAlive(held) ? held : undefined;
  }

  beginRun(id: string, what: string): Lease | undefined {
    // gc --compact swaps in a new folder: registering in the old one would write into a copy
    // nobody reads again.
    let ino: number | undefined;
    try {
      ino = statSync(this.path).ino;
    } catch {
      /* gone: replaced, or removed */
    }
    if (ino !== this.folderIno)
      throw new CacheReplaced(`cache ${this.path} was replaced while this process had it open`);
    return this.txn(() => {
      const gc = this.db.get(GC_KEY);
      if (gc && gc.pid !== process.pid && this.isAlive(gc)) return gc;
      void this.db.put(`${RUN_PREFIX}${id}`, { ...this.me, since: Date.now(), what });
      return undefined;
    });
  }

  endRun(id: string): void {
    this.txn(() => this.db.removeSync(`${RUN_PREFIX}${id}`));
  }

  beginGc(): Lease[] {
    return this.txn(() => {
      // Runs first: "in use by podium run p.json" says more than one of its stages.
      const busy = this.liveOthers()
        .sort(([a], [b]) => Number(b.startsWith(RUN_PREFIX)) - Number(a.startsWith(RUN_PREFIX)))
        .map(([, l]) => l);
      if (!busy.length) void this.db.put(GC_KEY, { ...this.me, since: Date.now(), what: 'podium gc' });
      return busy;
    });
  }

  endGc(): void {
    this.releaseLease(GC_KEY as Digest);
  }

  /** Leases held by live processes other than this one (a dead holder's lease counts as free). */
  private liveOthers(): Array<[string, Lease]> {
    const out: Array<[string, Lease]> = [];
    for (const { key, value } of this.db.getRange()) {
      if (value.pid === process.pid && value.host === this.host) continue;
      if (this.isAlive(value)) out.push([key as string, value]);
    }
    return out;
  }

  /**
   * A lease whose process is gone (killed, crashed, or its PID reused by another program) is
   * free. Other hosts cannot be asked (LMDB must not be shared over a network filesystem, so
   * this is a cache moved between machines): trust their leases for a day.
   */
  private isAlive(lease: Lease): boolean {
    if (lease.host !== this.host) return Date.now() - lease.since < 24 * 3600 * 1000;
    return isSameProcessAlive(lease.pid, lease.start);
  }
}
