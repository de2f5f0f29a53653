// The one contract every stage kind implements. A kind is a plain object: name, version, params
// schema, inputs, run(). The runner knows nothing else about kinds, so adding one is one file
// plus one line in registry.ts.
import type { Digest } from '../cache/canonical.js';
import type { StageRecord, Store } from '../cache/store.js';

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
  readonly store: Store;
  readonly signal: AbortSignal;
  log(line: string): void;
}

export interface StageResult {
  outputs: Record<string, Digest>;
  refs?: Digest[];
  metrics?: Record<string, unknown>;
  backend?: string | null;
}

export interface RestoreContext {
  readonly projectDir: string;
  readonly store: Store;
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
  constructor(message: string, readonly logTail: string[] = []) { super(message); }
}

/**
 * Bad input data (a missing dataset root, a corrupt annotation file, a non-image): the stage
 * fails like any other, and the run exits 2 as for an invalid pipeline.
 */
export class InputError extends StageError {
  readonly inputError = true;
}

export function defineStage<P>(kind: StageKind<P>): StageKind<P> {
  return kind;
}
