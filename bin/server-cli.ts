import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import express from 'express';
import yargs from 'yargs';
import {
  DEFAULT_HTTP_TIMEOUTS,
  DEFAULT_STREAM_LIMITS,
  FIRST_BACKOFF_MS,
  LONGEST_BACKOFF_MS,
  parseLoginBackoff,
  parseRateLimit,
} from '../api/index.js';
import { parseDuration } from '../common/units.js';
import { dropForeignEnv } from '../common/cli-env.js';
import type { LogFormat, LogLevel } from '../common/log.js';
import { LOG_OPTIONS } from './log-options.js';
import { parseSize } from '../common/units.js';
import { parseDatastore, type ImageStoreConfig } from '../controller/index.js';
import { writeDurably } from '../common/local-files.js';
import { DEFAULT_API_PORT, DEFAULT_CONTROLLER_PORT } from '../common/protocol.js';
import {
  DEFAULT_JOB_TIMEOUT_MS,
  DEFAULT_MIN_PASSWORD_LENGTH,
  DEFAULT_RETRY_POLICY,
  MAX_PASSWORD_LENGTH,
} from '../controller/index.js';
import { formatDuration } from '../common/units.js';
import { clusterSecretPath, DEFAULT_DATA_DIR, readKeptSecret } from './cluster-secret.js';
import { durationFlag } from './duration-flag.js';
import type { ServerConfig } from './server.js';
import { DEFAULT_PREFETCH, parsePrefetch, type PrefetchSetting } from '../worker/index.js';

export interface ServerCliConfig {
  server: ServerConfig;
  localWorkers: number;
  /** Slots of each local worker. */
  workerSlots: number;
  /** Jobs each local worker takes beyond its slots (its --prefetch). */
  workerPrefetch: PrefetchSetting;
  engine: 'auto' | 'sharp' | 'jimp';
  logLevel: LogLevel;
  logFormat: LogFormat;
  secretGenerated: boolean;
  /** The file the secret in use is kept in (a worker on this machine reads it there); null when it was given. */
  secretFile: string | null;
}

function parseUsers(list: string): Record<string, string> {
  const users: Record<string, string> = {};
  for (const entry of list
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error(`--users entries are name:password, not "${entry}"`);
    users[entry.slice(0, colon)] = entry.slice(colon + 1);
  }
  return users;
}

/**
 * The cluster secret from the flag/env, else the one kept in the data dir, else a new one kept there
 * (mode 0600, in a data dir created 0700). A kept one that other users may read is refused.
 */
async function clusterSecret(
  dataDir: string,
  given: string | undefined,
): Promise<{ secret: string; generated: boolean }> {
  if (given) return { secret: given, generated: false };
  const kept = readKeptSecret(dataDir, { privateFolder: false });
  if (kept) return { secret: kept, generated: false };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(24).toString('base64url');
  await writeDurably(clusterSecretPath(dataDir), secret, { mode: 0o600 });
  return { secret, generated: true };
}

/**
 * --trust-proxy: "false" (default), "true", a hop count, or a comma-separated list of addresses, subnets
 * and loopback/linklocal/uniquelocal.
 */
function parseTrustProxy(text: string): boolean | number | string {
  const value = text.trim();
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  try {
    express().set('trust proxy', value); // express compiles the list now and throws on a bad address
  } catch (error) {
    throw new Error(`--trust-proxy: ${error instanceof Error ? error.message : String(error)}`);
  }
  return value;
}

/** --image-store and its --s3-* flags, checked. Credentials are never flags: the AWS SDK's chain finds them. */
function imageStoreOf(
  args: {
    imageStore: 'local' | 's3';
    imagesDir: string;
    s3Bucket?: string | undefined;
    s3Prefix: string;
    s3Endpoint?: string | undefined;
    s3Region: string;
    s3ForcePathStyle: boolean;
  },
  dataDir: string,
): ImageStoreConfig {
  if (args.imageStore === 'local') return { kind: 'local', imagesDir: path.resolve(args.imagesDir) };
  const bucket = args.s3Bucket?.trim();
  if (!bucket) throw new Error('--image-store s3 needs --s3-bucket (or DPIP_S3_BUCKET): the bucket must exist');
  const prefix = args.s3Prefix.trim().replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9!_.*'()/-]{0,200}$/.test(prefix) || prefix.split('/').some((part) => part === '..'))
    throw new Error('--s3-prefix: letters, digits and !_.*\'()-, parts separated by "/"');
  let endpoint: string | null = null;
  if (args.s3Endpoint) {
    try {
      endpoint = new URL(args.s3Endpoint).toString().replace(/\/$/, '');
    } catch {
      throw new Error(`--s3-endpoint: "${args.s3Endpoint}" is not a URL (http://host:9000)`);
    }
  }
  return {
    kind: 's3',
    bucket,
    prefix,
    endpoint,
    region: args.s3Region,
    forcePathStyle: args.s3ForcePathStyle,
    stagingDir: path.join(dataDir, 'incoming'),
  };
}

const SERVER_OPTIONS = {
  port: { type: 'number', default: DEFAULT_API_PORT, describe: 'HTTP port of the REST API' },
  host: { type: 'string', default: '0.0.0.0', describe: 'address the API and controller bind' },
  'controller-port': {
    type: 'number',
    default: DEFAULT_CONTROLLER_PORT,
    describe: 'controller PUB port; its JSON-RPC port is this + 1',
  },
  'public-api-url': {
    type: 'string',
    describe: 'API URL told to workers (default: the controller host they dialled, on --port)',
  },
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR, describe: 'datastore, signing key and cluster secret' },
  datastore: {
    type: 'string',
    default: 'lowdb',
    describe: 'where records are kept: lowdb (files in --data-dir) or postgres://user:password@host:5432/db',
  },
  'images-dir': { type: 'string', default: 'images', describe: 'image files, one folder per workload (local store)' },
  'image-store': {
    choices: ['local', 's3'] as const,
    default: 'local' as const,
    describe: 'where image bytes live: the local --images-dir, or S3-compatible object storage (--s3-*)',
  },
  's3-bucket': { type: 'string', describe: 'bucket of the S3 image store (it must exist)' },
  's3-prefix': { type: 'string', default: '', describe: 'key prefix in the bucket: <prefix>/<workload>/<id>.<ext>' },
  's3-endpoint': { type: 'string', describe: 'endpoint of an S3-compatible store (MinIO, Ceph, R2); default AWS' },
  's3-region': { type: 'string', default: 'us-east-1', describe: 'region of the bucket' },
  's3-force-path-style': {
    type: 'boolean',
    default: false,
    describe: 'address buckets as <endpoint>/<bucket> (MinIO and most self-hosted stores need it)',
  },
  workers: { type: 'number', default: 2, describe: 'local worker processes to start (0 for none)' },
  'worker-slots': {
    type: 'number',
    describe: 'slots per local worker (default: the CPU count shared among the local workers, at least 1)',
  },
  'worker-prefetch': {
    type: 'string',
    default: String(DEFAULT_PREFETCH),
    describe: 'jobs each local worker takes beyond its slots, waiting for one (its --prefetch: a number, or auto)',
  },
  engine: {
    choices: ['auto', 'sharp', 'jimp'] as const,
    default: 'auto' as const,
    describe: 'image engine of the local workers',
  },
  secret: {
    type: 'string',
    describe: 'cluster secret workers must present (default: generated once, kept in the data dir)',
  },
  users: { type: 'string', default: '', describe: 'users to create at start if missing: alice:pw,bob:pw' },
  registration: { type: 'boolean', default: true, describe: 'allow POST /register (--no-registration to disable)' },
  'min-password-length': {
    type: 'number',
    default: DEFAULT_MIN_PASSWORD_LENGTH,
    describe: 'shortest password a new user may choose (existing users keep theirs)',
  },
  'lease-ms': {
    type: 'number',
    default: 5000,
    describe: 'a worker silent this long is dead and its jobs are requeued',
  },
  'heartbeat-ms': { type: 'number', default: 1000, describe: 'worker heartbeat interval' },
  'job-timeout': {
    type: 'string',
    default: formatDuration(DEFAULT_JOB_TIMEOUT_MS),
    describe: 'a job running this long (30s, 10m, 1h) is released as a failed attempt, even while its lease is renewed',
  },
  retention: {
    type: 'string',
    default: 'off',
    describe: 'finished or cancelled workloads idle this long (30s, 12h, 7d) are deleted with their images, or "off"',
  },
  'max-attempts': {
    type: 'number',
    default: DEFAULT_RETRY_POLICY.maxAttempts,
    describe: 'attempts per job before it fails',
  },
  'max-upload-bytes': { type: 'number', default: 50 * 1024 * 1024, describe: 'largest accepted upload' },
  'min-free-disk': {
    type: 'string',
    default: '512MB',
    describe: 'uploads are refused (507) when they would leave less free space on the images or data disk (0: off)',
  },
  'max-pixels': { type: 'number', default: 50_000_000, describe: 'largest accepted image in pixels' },
  'user-quota-images': {
    type: 'string',
    default: 'off',
    describe: 'originals one user may keep, then uploads are refused (403), or "off"',
  },
  'user-quota-bytes': {
    type: 'string',
    default: 'off',
    describe: 'bytes of one user\'s originals together (a size: 10GB, 500MB), then uploads are refused (403), or "off"',
  },
  'max-streams': {
    type: 'number',
    default: DEFAULT_STREAM_LIMITS.maxStreams,
    describe: 'open event streams (GET /events), all users together; the next is refused (429)',
  },
  'max-streams-per-user': {
    type: 'number',
    default: DEFAULT_STREAM_LIMITS.maxStreamsPerUser,
    describe: "open event streams of one user; the user's next is refused (429)",
  },
  'token-ttl': { type: 'number', default: 24 * 3600, describe: 'user token lifetime in seconds' },
  'system-name': { type: 'string', default: 'DPIP', describe: 'name shown by /status' },
  'login-rate-limit': {
    type: 'string',
    default: '10/10s',
    describe: 'login and registration attempts per username: attempts/window (10/10s, 5/500ms, 100/1m) or "off"',
  },
  'login-rate-limit-client': {
    type: 'string',
    default: '50/10s',
    describe: 'login and registration attempts per client address (IPv6: per /64), or "off"',
  },
  'login-backoff': {
    type: 'string',
    default: '5',
    describe:
      'failed logins in a row for a username, after which each attempt waits 1 s, doubling with each failure ' +
      '(until a success), or "off"',
  },
  'login-backoff-client': {
    type: 'string',
    default: '20',
    describe: 'the same per client address (IPv6: per /64), or "off"',
  },
  'login-backoff-max': {
    type: 'string',
    default: '15m',
    describe: 'longest wait of the login backoff (e.g. 15m, 1h)',
  },
  'trust-proxy': {
    type: 'string',
    default: 'false',
    describe:
      'proxies whose X-Forwarded-For gives the client address: false, a hop count, ' +
      'or addresses/subnets (loopback, 10.0.0.0/8, ...)',
  },
  'headers-timeout-ms': {
    type: 'number',
    default: DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs,
    describe: 'time a client has to send the request headers',
  },
  'request-timeout-ms': {
    type: 'number',
    default: DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs,
    describe: 'time a client has to send a whole request, upload included (0: no limit)',
  },
  'keep-alive-timeout-ms': {
    type: 'number',
    default: DEFAULT_HTTP_TIMEOUTS.keepAliveTimeoutMs,
    describe: 'time an idle keep-alive connection stays open',
  },
  'metrics-token': {
    type: 'string',
    describe: 'token Prometheus must send (Authorization: Bearer) to read GET /metrics (default: no token needed)',
  },
  ...LOG_OPTIONS,
} as const;

export async function parseServerArgs(argv: string[], env: NodeJS.ProcessEnv): Promise<ServerCliConfig> {
  dropForeignEnv(env, 'DPIP', Object.keys(SERVER_OPTIONS));
  const args = yargs(argv)
    .scriptName('dpip')
    // a flag given twice means its last value, as in most programs (not a list that no option expects)
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .env('DPIP')
    .options(SERVER_OPTIONS)
    .strict()
    .help()
    .parseSync();

  const whole = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max)
      throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
  };
  whole('port', args.port, 1, 65535);
  whole('controller-port', args.controllerPort, 1, 65533); // its two JSON-RPC sockets take the next two ports
  whole('workers', args.workers, 0, 64);
  whole('heartbeat-ms', args.heartbeatMs, 50, 60_000);
  whole('lease-ms', args.leaseMs, 100, 3_600_000);
  whole('max-attempts', args.maxAttempts, 1, 100);
  const jobTimeoutMs = durationFlag('job-timeout', args.jobTimeout, 1000, 7 * 86_400_000);
  const retentionMs =
    args.retention.trim() === 'off' ? null : durationFlag('retention', args.retention, 1000, 100 * 365 * 86_400_000);
  whole('max-upload-bytes', args.maxUploadBytes, 1, 2 ** 31);
  whole('max-pixels', args.maxPixels, 1, 2 ** 31);
  whole('max-streams', args.maxStreams, 1, 1_000_000);
  whole('max-streams-per-user', args.maxStreamsPerUser, 1, 1_000_000);
  whole('token-ttl', args.tokenTtl, 60, 10 * 365 * 24 * 3600);
  whole('min-password-length', args.minPasswordLength, 1, MAX_PASSWORD_LENGTH);
  if (args.workerSlots !== undefined) whole('worker-slots', args.workerSlots, 1, 256);
  const workerPrefetch = parsePrefetch(args.workerPrefetch, 'worker-prefetch');
  if (args.heartbeatMs * 2 > args.leaseMs) throw new Error('--lease-ms must be at least twice --heartbeat-ms');
  whole('headers-timeout-ms', args.headersTimeoutMs, 100, 600_000);
  whole('request-timeout-ms', args.requestTimeoutMs, 0, 24 * 3_600_000);
  whole('keep-alive-timeout-ms', args.keepAliveTimeoutMs, 100, 600_000);
  if (args.requestTimeoutMs > 0 && args.requestTimeoutMs < args.headersTimeoutMs)
    throw new Error('--request-timeout-ms must be 0 or at least --headers-timeout-ms');
  /** A flag's value parsed, or an error that names the flag. */
  const flag = <T>(name: string, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      throw new Error(`--${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const loginRateLimit = flag('login-rate-limit', () => parseRateLimit(args.loginRateLimit));
  const loginRateLimitPerClient = flag('login-rate-limit-client', () => parseRateLimit(args.loginRateLimitClient));
  const backoffMaxMs = flag('login-backoff-max', () => {
    const ms = parseDuration(args.loginBackoffMax);
    if (ms < FIRST_BACKOFF_MS || ms > LONGEST_BACKOFF_MS) throw new Error('the longest wait must be from 1 s to 24 h');
    return ms;
  });
  const loginBackoff = flag('login-backoff', () => parseLoginBackoff(args.loginBackoff, backoffMaxMs));
  const loginBackoffPerClient = flag('login-backoff-client', () =>
    parseLoginBackoff(args.loginBackoffClient, backoffMaxMs),
  );
  const trustProxy = parseTrustProxy(args.trustProxy);
  const userQuotas = {
    images: flag('user-quota-images', () => {
      if (args.userQuotaImages.trim() === 'off') return null;
      const count = Number(args.userQuotaImages);
      if (!Number.isInteger(count) || count < 1) throw new Error('a whole number of images from 1, or "off"');
      return count;
    }),
    bytes: flag('user-quota-bytes', () => {
      if (args.userQuotaBytes.trim() === 'off') return null;
      const bytes = parseSize(args.userQuotaBytes);
      if (bytes < 1) throw new Error('a size of at least 1 byte, or "off"');
      return bytes;
    }),
  };
  let minFreeDiskBytes: number;
  try {
    minFreeDiskBytes = parseSize(args.minFreeDisk);
  } catch (error) {
    throw new Error(`--min-free-disk: ${error instanceof Error ? error.message : String(error)}`);
  }
  const dataDir = path.resolve(args.dataDir);
  const imageStore = flag('image-store', () => imageStoreOf(args, dataDir));
  const datastore = flag('datastore', () => parseDatastore(args.datastore));
  const { secret, generated } = await clusterSecret(dataDir, args.secret);
  return {
    server: {
      controller: {
        systemName: args.systemName,
        dataDir,
        datastore,
        imagesDir: path.resolve(args.imagesDir),
        imageStore,
        bindHost: args.host,
        port: args.controllerPort,
        apiPort: args.port,
        publicApiUrl: args.publicApiUrl ?? null,
        clusterSecret: secret,
        leaseMs: args.leaseMs,
        heartbeatMs: args.heartbeatMs,
        jobTimeoutMs,
        announceMs: 1000,
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: args.maxAttempts },
        userTokenTtlSeconds: args.tokenTtl,
        workerTokenTtlSeconds: 7 * 24 * 3600,
        minFreeDiskBytes,
        userQuotas,
        retentionMs,
      },
      api: {
        systemName: args.systemName,
        host: args.host,
        port: args.port,
        maxUploadBytes: args.maxUploadBytes,
        maxPixels: args.maxPixels,
        registrationOpen: args.registration,
        minPasswordLength: args.minPasswordLength,
        maxBodyBytes: 64 * 1024,
        loginRateLimit,
        loginRateLimitPerClient,
        loginBackoff,
        loginBackoffPerClient,
        trustProxy,
        headersTimeoutMs: args.headersTimeoutMs,
        requestTimeoutMs: args.requestTimeoutMs,
        keepAliveTimeoutMs: args.keepAliveTimeoutMs,
        metricsToken: args.metricsToken || null,
        streams: { maxStreams: args.maxStreams, maxStreamsPerUser: args.maxStreamsPerUser },
      },
      scheduler: { assignTimeoutMs: 3000, tickMs: 200 },
      users: parseUsers(args.users),
    },
    localWorkers: args.workers,
    // local workers share this machine's cores: more jobs at once than cores only adds switching and memory
    workerSlots: args.workerSlots ?? Math.max(1, Math.floor(availableParallelism() / Math.max(1, args.workers))),
    workerPrefetch,
    engine: args.engine,
    logLevel: args.logLevel,
    logFormat: args.logFormat,
    secretGenerated: generated,
    secretFile: args.secret ? null : clusterSecretPath(dataDir),
  };
}
