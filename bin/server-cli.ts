import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yargs from 'yargs';
import { LOG_LEVELS, type LogLevel } from '../common/log.js';
import { DEFAULT_API_PORT, DEFAULT_CONTROLLER_PORT } from '../common/protocol.js';
import { DEFAULT_RETRY_POLICY } from '../controller/index.js';
import type { ServerConfig } from './server.js';

export interface ServerCliConfig {
  server: ServerConfig;
  localWorkers: number;
  /** Slots of each local worker; undefined = the worker's own default (its CPU count). */
  workerSlots: number | undefined;
  engine: 'auto' | 'sharp' | 'jimp';
  logLevel: LogLevel;
  secretGenerated: boolean;
}

function parseUsers(list: string): Record<string, string> {
  const users: Record<string, string> = {};
  for (const entry of list.split(',').map((item) => item.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error(`--users entries are name:password, not "${entry}"`);
    users[entry.slice(0, colon)] = entry.slice(colon + 1);
  }
  return users;
}

/** The cluster secret from the flag/env, else the one kept in the data dir, else a new one kept there. */
async function clusterSecret(dataDir: string, given: string | undefined): Promise<{ secret: string; generated: boolean }> {
  if (given) return { secret: given, generated: false };
  const file = path.join(dataDir, 'cluster-secret');
  try {
    const kept = (await readFile(file, 'utf8')).trim();
    if (kept) return { secret: kept, generated: false };
  } catch {
    // first start
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(24).toString('base64url');
  await writeFile(file, secret, { mode: 0o600 });
  return { secret, generated: true };
}

export async function parseServerArgs(argv: string[]): Promise<ServerCliConfig> {
  const args = yargs(argv)
    .scriptName('dpip')
    .env('DPIP')
    .option('port', { type: 'number', default: DEFAULT_API_PORT, describe: 'HTTP port of the REST API' })
    .option('host', { type: 'string', default: '0.0.0.0', describe: 'address the API and controller bind' })
    .option('controller-port', { type: 'number', default: DEFAULT_CONTROLLER_PORT, describe: 'controller PUB port; its JSON-RPC port is this + 1' })
    .option('public-api-url', { type: 'string', describe: 'API URL told to workers (default: the controller host they dialled, on --port)' })
    .option('data-dir', { type: 'string', default: 'data', describe: 'datastore, signing key and cluster secret' })
    .option('images-dir', { type: 'string', default: 'images', describe: 'image files, one folder per workload' })
    .option('workers', { type: 'number', default: 2, describe: 'local worker processes to start (0 for none)' })
    .option('worker-slots', { type: 'number', describe: 'slots per local worker (default: its CPU count)' })
    .option('engine', { choices: ['auto', 'sharp', 'jimp'] as const, default: 'auto' as const, describe: 'image engine of the local workers' })
    .option('secret', { type: 'string', describe: 'cluster secret workers must present (default: generated once, kept in the data dir)' })
    .option('users', { type: 'string', default: '', describe: 'users to create at start: alice:pw,bob:pw' })
    .option('registration', { type: 'boolean', default: true, describe: 'allow POST /register (--no-registration to disable)' })
    .option('lease-ms', { type: 'number', default: 5000, describe: 'a worker silent this long is dead and its jobs are requeued' })
    .option('heartbeat-ms', { type: 'number', default: 1000, describe: 'worker heartbeat interval' })
    .option('max-attempts', { type: 'number', default: DEFAULT_RETRY_POLICY.maxAttempts, describe: 'attempts per job before it fails' })
    .option('max-upload-bytes', { type: 'number', default: 50 * 1024 * 1024, describe: 'largest accepted upload' })
    .option('max-pixels', { type: 'number', default: 50_000_000, describe: 'largest accepted image in pixels' })
    .option('token-ttl', { type: 'number', default: 24 * 3600, describe: 'user token lifetime in seconds' })
    .option('system-name', { type: 'string', default: 'DPIP', describe: 'name shown by /status' })
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
    .strict()
    .help()
    .parseSync();

  const positive = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number >= 0`);
    return value;
  };
  for (const [name, value] of Object.entries({ port: args.port, 'controller-port': args.controllerPort, workers: args.workers, 'lease-ms': args.leaseMs, 'heartbeat-ms': args.heartbeatMs })) positive(name, value);
  if (args.heartbeatMs * 2 > args.leaseMs) throw new Error('--lease-ms must be at least twice --heartbeat-ms');
  const dataDir = path.resolve(args.dataDir);
  const { secret, generated } = await clusterSecret(dataDir, args.secret);
  return {
    server: {
      controller: {
        systemName: args.systemName,
        dataDir,
        imagesDir: path.resolve(args.imagesDir),
        bindHost: args.host,
        port: args.controllerPort,
        apiPort: args.port,
        publicApiUrl: args.publicApiUrl ?? null,
        clusterSecret: secret,
        leaseMs: args.leaseMs,
        heartbeatMs: args.heartbeatMs,
        announceMs: 1000,
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: Math.max(1, args.maxAttempts) },
        userTokenTtlSeconds: args.tokenTtl,
        workerTokenTtlSeconds: 7 * 24 * 3600,
      },
      api: {
        systemName: args.systemName,
        host: args.host,
        port: args.port,
        maxUploadBytes: args.maxUploadBytes,
        maxPixels: args.maxPixels,
        registrationOpen: args.registration,
        maxBodyBytes: 64 * 1024,
      },
      scheduler: { assignTimeoutMs: 3000, tickMs: 200 },
      users: parseUsers(args.users),
    },
    localWorkers: args.workers,
    workerSlots: args.workerSlots,
    engine: args.engine,
    logLevel: args.logLevel,
    secretGenerated: generated,
  };
}
