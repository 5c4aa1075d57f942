import type { ImageStoreConfig } from './image-store/index.js';
import type { DatastoreConfig } from './store/index.js';
import type { UserQuotaLimits } from './quotas.js';
import type { RetryPolicy } from './jobs/index.js';

export interface ControllerConfig {
  systemName: string;
  dataDir: string;
  /** Where the records are kept; absent: lowdb's files in `dataDir`. */
  datastore?: DatastoreConfig;
  /** The images folder of the local image store (the default one). */
  imagesDir: string;
  /** Where image bytes live; absent: the local folder `imagesDir`. */
  imageStore?: ImageStoreConfig;
  bindHost: string;
  /** PUB (announcements) binds here; the registration REP socket on port + 1, the session REP socket on port + 2. */
  port: number;
  apiPort: number;
  /** Told to workers when set; otherwise workers reach the API at the controller's host on apiPort. */
  publicApiUrl: string | null;
  clusterSecret: string;
  leaseMs: number;
  heartbeatMs: number;
  /** A job running this long is released as a failed attempt, however often its lease was renewed. */
  jobTimeoutMs: number;
  announceMs: number;
  retry: RetryPolicy;
  userTokenTtlSeconds: number;
  workerTokenTtlSeconds: number;
  /** Uploads are refused (507) when they would leave less free space than this on the images or data disk. */
  minFreeDiskBytes: number;
  /** The API's --max-pixels, told to workers at registration: their engines decode nothing larger. */
  maxPixels?: number;
  /** What one user may keep (originals, their bytes): past it an upload is 403. Absent: no caps. */
  userQuotas?: UserQuotaLimits;
  /** Lifetime of the short-lived tokens for URLs (GET /events, archive downloads). Default 60 s. */
  urlTokenTtlSeconds?: number;
  /**
   * Finished or cancelled workloads whose last activity is older than this are deleted in the background
   * (`--retention`). Absent or null: kept until their owner deletes them.
   */
  retentionMs?: number | null;
}

export function rpcPortOf(config: Pick<ControllerConfig, 'port'>): number {
  return config.port + 1;
}

/** The session socket (heartbeat, fail, goodbye from registered workers): told to each in its register reply. */
export function sessionPortOf(config: Pick<ControllerConfig, 'port'>): number {
  return config.port + 2;
}

/** The image store to open: the one configured, else the local folder. */
export function imageStoreConfigOf(config: Pick<ControllerConfig, 'imagesDir' | 'imageStore'>): ImageStoreConfig {
  return config.imageStore ?? { kind: 'local', imagesDir: config.imagesDir };
}
