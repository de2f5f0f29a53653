// The one contract every stage kind implements. A kind is a plain object: name, version, params
// schema, inputs, run(). The runner knows nothing else about kinds, so adding one is one file
// plus one line in registry.ts.
import type { Digest } from '../cache/canonical.js';
import type { BlobInfo, IndexEntry, StageRecord } from '../cache/store.js';

/** A JSON Schema object (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

export interface InputSpec {
  /** Whether the input takes a list of stages (always true when it names a matrix stage). */
  many: boolean;
  required: boolean;
  description: string;
  /**
   * The upstream outputs this input uses; default all. Only these reach the stage and only their
   * digests enter its key, so a change to an output it never reads (augment's preview picture)
   * does not rerun it (finetune reads the policy alone).
   */
  reads?: readonly string[];
}

/** What a downstream stage receives for one upstream stage. */
export interface InputArtifact {
  stageId: string;
  outputs: Record<string, Digest>;
  metrics: Record<string, unknown>;
}

export type InputValue = InputArtifact | InputArtifact[];

// Defined beside the store that keeps it (gc reads it there too); part of this contract.
export type { IndexEntry };

/**
 * A store a worker thread can open for itself: `module` exports `openStageStore(args)`. Plain
 * data, so it crosses postMessage; the stage never names the implementation it loads.
 */
export interface StoreOpener {
  module: string;
  args: unknown;
}

/** A handle a thread opened for itself through an opener: it closes it when done (flushing first). */
export interface OwnStageStore extends StageStore {
  close(): Promise<void>;
}

/** What a StoreOpener's module exports. */
export interface StoreOpenerModule {
  openStageStore(args: unknown): OwnStageStore;
}

/** Opens a handle of its own on the store `opener` describes (in a worker thread or process). */
export async function openStoreFrom(opener: StoreOpener): Promise<OwnStageStore> {
  return ((await import(opener.module)) as StoreOpenerModule).openStageStore(opener.args);
}

/**
 * All a stage may do with the cache: blobs by content, its index, a stat-memoised file hash, and a
 * folder for files it generates. Today it is the local LMDB cache; a job on a cluster node gets
 * one whose blobs live in the shared store. A stage must not care which.
 */
export interface StageStore {
  /** Stores bytes under their sha256 (idempotent) and resolves once durable. */
  putBlob(bytes: Uint8Array): Promise<Digest>;
  /** Queues bytes and returns their digest at once; durable after flush() (the runner flushes before committing). */
  queueBlob(bytes: Uint8Array, digest?: Digest): Digest;
  /**
   * The bytes, hash-checked. A missing or damaged blob throws CacheCorruption (the runner repairs
   * it by rerunning its producer); `optional` returns undefined for a missing one instead (a probe).
   */
  getBlob(digest: Digest, opts?: { optional?: boolean }): Buffer | undefined;
  /**
   * Reads blobs without copying them: `fn` gets hash-checked views that are valid only while it
   * runs (copy what must outlive it). For reading a dataset batch by batch.
   */
  withBlobs<T>(digests: readonly Digest[], fn: (views: Uint8Array[]) => T): T;
  blobInfo(digest: Digest): BlobInfo | undefined;
  /** The entry under `key`; undefined when absent or not an entry (what an older podium stored). */
  getIndex(key: string): IndexEntry | undefined;
  /** Queued like queueBlob: visible to getIndex and durable after flush(). */
  setIndex(key: string, entry: IndexEntry): void;
  /** sha256 of a file or folder, memoised by (size, mtime, inode); undefined when absent. */
  hashPath(absPath: string): Digest | undefined;
  /** Waits for queued writes. */
  flush(): Promise<void>;
  /** A folder beside the cache for files a stage generates and keeps (the synthetic dataset's images). */
  readonly filesDir: string;
  /** How a worker thread opens its own handle on this store. */
  readonly opener: StoreOpener;
}

export interface StageContext {
  readonly stageId: string;
  /** The stage key: long stages index per-epoch progress under it, so a rerun resumes. */
  readonly key: Digest;
  /** False under `podium verify`: recompute from scratch, never resume from saved progress. */
  readonly resume: boolean;
  /** The directory relative paths in params are resolved against (where podium runs). */
  readonly projectDir: string;
  readonly seed: number;
  /** 0-based worker slot, and the GPU assigned to it with --gpus. */
  readonly slot: number;
  readonly gpu: string | undefined;
  /**
   * CPU threads this stage may use. The runner shares the machine's cores among the stages
   * running at once (two training stages in parallel get one core each; a stage alone gets all).
   */
  readonly threads: number;
  readonly inputs: Record<string, InputValue>;
  readonly store: StageStore;
  readonly signal: AbortSignal;
  log(line: string): void;
  /**
   * Where the stage is: shown as a live bar on a terminal (rate, ETA). Cheap to call often: the
   * runner throttles what it forwards. Not recorded anywhere.
   */
  progress(update: Progress): void;
  /** A line worth showing without --verbose, e.g. one per finetune epoch; also logged. */
  note(line: string): void;
}

/** One progress update: `done` of `total` units, and a short detail shown beside the bar. */
export interface Progress {
  /** What is counted: 'images', 'batches', 'crops'. */
  unit: string;
  done: number;
  total: number;
  /** "epoch 3/12 · loss 0.41 · acc 0.87". */
  detail?: string;
}

export interface StageResult {
  outputs: Record<string, Digest>;
  refs?: Digest[];
  /** Functions of the stage's inputs only: they go to the lock file, which verify compares. */
  metrics?: Record<string, unknown>;
  /**
   * How fast it ran (finetune: imagesPerSec, secondsPerEpoch): kept in the record and shown by
   * progress, show and report, but never in the lock, since timings differ from run to run.
   */
  timing?: Record<string, number>;
  backend?: string | null;
}

export interface RestoreContext {
  readonly projectDir: string;
  readonly store: StageStore;
}

export interface StageKind<P = Record<string, unknown>> {
  readonly name: string;
  /** Bump when the kind's behaviour changes: it is part of every key, so old results go stale. */
  readonly version: number;
  readonly description: string;
  /** JSON Schema of params; ajv fills its defaults before the key is computed. */
  readonly params: JsonSchema;
  /** Named inputs; 'any' accepts any names (used by `command` for ordering). */
  readonly inputs: Record<string, InputSpec> | 'any';
  /** Run in a worker process: for stages that load heavy native modules or may leak memory. */
  readonly isolate: boolean;
  /**
   * Problems found without running, reported at analysis with the param's file position (a
   * dataset root that does not exist), so `--dry-run` and `status` show them too. Cheap: no I/O
   * beyond a stat.
   */
  check?(params: P, projectDir: string): Array<{ param: string; message: string }>;
  /** Files and folders (relative to the project) whose contents are part of the key. */
  deps?(params: P): string[];
  run(ctx: StageContext, params: P): Promise<StageResult>;
  /** Project files a cached result depends on besides its deps (e.g. outs on disk); default none. */
  files?(params: P, record: StageRecord): string[];
  /** On a cache hit: put side effects (files on disk) back when missing or changed. Returns paths restored. */
  restore?(ctx: RestoreContext, params: P, record: StageRecord): string[];
}

/** A stage failure the user can act on: reported as one line, without a stack trace. */
export class StageError extends Error {
  constructor(
    message: string,
    readonly logTail: string[] = [],
  ) {
    super(message);
  }
}

/**
 * Bad input data (a missing dataset root, a corrupt annotation file, a non-image): the stage
 * fails like any other, and the run exits 2 as for an invalid pipeline.
 */
export class InputError extends StageError {
  /** path: the project file at fault, when there is one (shown to tools as the failure's path). */
  constructor(
    message: string,
    logTail: string[] = [],
    readonly path?: string,
  ) {
    super(message, logTail);
  }
}

export function defineStage<P>(kind: StageKind<P>): StageKind<P> {
  return kind;
}
