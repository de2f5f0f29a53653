// What the SLURM backend is built with; every part of it (submission, adoption, collecting a
// job's end) reads from this one object.
import type { RemoteStore } from '../../cache/remote-store.js';
import type { Pipeline } from '../analyze.js';
import type { EventSink } from '../events.js';
import type { SlurmConfig } from '../project-config.js';

export interface SlurmBackendOptions {
  pipeline: Pipeline;
  set: string[];
  backend: string | undefined;
  remote: RemoteStore;
  config: SlurmConfig;
  /** Folder on shared storage for job scripts, logs, results and tickets. */
  spool: string;
  onEvent: EventSink;
  /** On interrupt: cancel the jobs in flight (true), leave them (false), or ask (a function). */
  onInterrupt: boolean | ((jobs: string[]) => Promise<boolean>);
}
