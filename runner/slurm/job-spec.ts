// What the runner hands a cluster job, and what the job hands back. Both are plain JSON files in
// the job's spool folder on shared storage; blobs never travel in them, only through the store.
import type { Digest } from '../../cache/canonical.js';
import type { IndexEntry, StageRecord } from '../../cache/store.js';
import type { InputValue } from '../../stages/contract.js';
import type { StageFailure } from '../stage-failure.js';

export interface JobSpec {
  /** Absolute path of the pipeline file (the project lives on shared storage). */
  pipeline: string;
  stageId: string;
  key: Digest;
  /** False under --force/--from: recompute from scratch. */
  resume: boolean;
  /** The runner's --set and --backend: the job must analyse the same pipeline. */
  set: string[];
  backend: string | null;
  /** What the stage receives from its upstream records. */
  inputs: Record<string, InputValue>;
  /** The blobs those inputs are and point to: the job fetches exactly these from the store. */
  inputBlobs: Digest[];
  threads: number;
  /** Shared folder for files stages generate beside their cache (synthetic images), kept across jobs. */
  filesDir: string;
}

export interface JobFacts {
  host: string;
  /** As SLURM set it for the job (--gres=gpu:N). */
  cudaVisibleDevices: string | null;
  slurmJobId: string | null;
  /** The job-local folder its blobs were mirrored in (never the runner's cache). */
  scratch: string;
}

export type JobResult =
  | ({
      ok: true;
      record: StageRecord /** Stage index entries written by the stage: memos the runner may keep. */;
      index: Array<[string, IndexEntry]>;
    } & JobFacts)
  | ({
      ok: false;
      failure: StageFailure /** An input blob found damaged in the store. */;
      corruptDigest?: string;
    } & JobFacts);
