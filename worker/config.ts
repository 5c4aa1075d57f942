import type { HttpTimeouts } from './api-client.js';
import type { EngineChoice } from './engines/index.js';
import type { PrefetchSetting } from './prefetch.js';
import type { LogFormat, LogLevel } from '../common/log.js';

/** A controller as given to --controller: its host, and the port it announces on (its PUB socket). */
export interface ControllerAddress {
  host: string;
  port: number;
}

export interface WorkerConfig {
  /**
   * The controllers this worker listens to (--controller), at least one, in the order given: of the servers
   * that share a datastore, the one that leads announces, and the worker follows it.
   */
  controllers: ControllerAddress[];
  name: string;
  tags: string[];
  slots: number;
  /** Assignments taken beyond the slots, waiting for one to free (--prefetch): a number, or auto. */
  prefetch: PrefetchSetting;
  /** The threads sharp may give one job (--engine-threads); null: the cores shared among the slots. */
  engineThreads: number | null;
  engine: EngineChoice;
  secret: string;
  /** The file the secret was read from (the server's data dir, on its machine); null when it was given. */
  secretFile: string | null;
  /** Host the scheduler dials to reach this worker; null = the local address on the route to the controller. */
  advertiseHost: string | null;
  /** Port of this worker's JSON-RPC socket; 0 = pick a free one. */
  rpcPort: number;
  /** How long SIGTERM waits for running jobs before handing them back. */
  drainMs: number;
  /** A job not done this long after it started is given up and reported as a retryable failure. */
  jobDeadlineMs: number;
  /** What the running jobs may take in memory together, by their estimates (--max-memory). */
  maxMemoryBytes: number;
  /** Time limits of each call to the API (download, upload), and of each presigned transfer to the object store. */
  httpTimeouts: HttpTimeouts;
  /**
   * The server's images folder as this worker sees it (--images-dir), absolute; null: none. When its
   * STORE_ID_FILE names the server's folder, the controller sends this worker jobs whose bytes move by path.
   */
  imagesDir: string | null;
  logLevel: LogLevel;
  logFormat: LogFormat;
}
