import { isIPv6 } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { dropForeignEnv } from '../common/cli-env.js';
import { LOG_OPTIONS } from './log-options.js';
import { DEFAULT_CONTROLLER_PORT, tagsSchema, workerNameSchema } from '../common/protocol.js';
import { formatDuration, parseSize } from '../common/units.js';
import {
  DEFAULT_HTTP_TIMEOUTS,
  DEFAULT_JOB_DEADLINE_MS,
  DEFAULT_PREFETCH,
  defaultMemoryBudget,
  parsePrefetch,
  type ControllerAddress,
  type HttpTimeouts,
  type WorkerConfig,
} from '../worker/index.js';
import { DEFAULT_DATA_DIR } from './cluster-secret.js';
import { durationFlag } from './duration-flag.js';
import { findWorkerSecret } from './worker-secret.js';

/** The most controllers one worker listens to (--controller a:40899,b:40899,...). */
export const MAX_CONTROLLERS = 16;

/**
 * The controllers of --controller: one host:port or several, comma-separated; an IPv6 host in brackets
 * ([::1]:40899). Throws, naming the entry, on one that is not host:port, on the same address twice, and on
 * more than MAX_CONTROLLERS.
 */
export function parseControllers(value: string): ControllerAddress[] {
  const entries = value.split(',').map((entry) => entry.trim());
  if (entries.length > MAX_CONTROLLERS)
    throw new Error(`--controller lists ${entries.length} addresses: at most ${MAX_CONTROLLERS}`);
  const seen = new Set<string>();
  return entries.map((entry) => {
    const bad = (why: string): Error => new Error(`--controller: "${entry}" ${why} (in "${value}")`);
    if (entry === '') throw bad('is empty: give host:port, several separated by commas');
    const match = /^(.+):(\d{1,5})$/.exec(entry);
    if (!match) throw bad('is not host:port');
    const bracketed = /^\[(.*)\]$/.exec(match[1]!);
    const host = bracketed ? bracketed[1]! : match[1]!;
    const port = Number(match[2]);
    if (port < 1 || port > 65535) throw bad('has a port out of 1-65535');
    // a host name or IPv4 address, or an IPv6 address (with its zone, fe80::1%eth0)
    if (host.includes(':') ? !isIPv6(host.replace(/%[\w.-]+$/, '')) : !/^[\w.-]+$/.test(host))
      throw bad('has no valid host (an IPv6 address goes in brackets: [::1]:40899)');
    if (bracketed && !host.includes(':')) throw bad('has brackets around a host that is not an IPv6 address');
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) throw bad('is listed twice');
    seen.add(key);
    return { host, port };
  });
}

/** The worker's one typed config, from flags and DPIP_* environment variables. */
const WORKER_OPTIONS = {
  controller: {
    type: 'string',
    default: `localhost:${DEFAULT_CONTROLLER_PORT}`,
    describe:
      'controller address host:port (its PUB port); the servers that share one datastore, comma-separated ' +
      '(a:40899,b:40899): the worker follows the one that announces',
  },
  'worker-name': { type: 'string', describe: 'unique worker name (default: host name + pid)' },
  tags: { type: 'string', default: '', describe: 'comma-separated tags, e.g. gpu,fast' },
  slots: { type: 'number', default: availableParallelism(), describe: 'jobs run at once' },
  prefetch: {
    type: 'string',
    default: String(DEFAULT_PREFETCH),
    describe:
      'jobs taken beyond --slots, waiting for a slot: the next job is at hand when one ends (0: none; auto: ' +
      'as many as the slots work through in about 20 ms, 1 to 16)',
  },
  engine: { choices: ['auto', 'sharp', 'jimp'] as const, default: 'auto' as const, describe: 'image engine' },
  'engine-threads': {
    type: 'number',
    describe:
      "threads sharp may give one job (default: the CPU count shared among the slots); workers sharing a machine's " +
      'cores each take their share',
  },
  secret: {
    type: 'string',
    describe:
      "cluster secret printed by the server (or DPIP_SECRET); on the server's machine, read from its data dir " +
      'when not given',
  },
  'data-dir': {
    type: 'string',
    default: DEFAULT_DATA_DIR,
    describe: "the server's data dir, where a worker on its machine finds the cluster secret",
  },
  'advertise-host': {
    type: 'string',
    describe:
      'host or IP the controller dials to reach this worker ' +
      '(default: the local address on the route to the controller)',
  },
  'images-dir': {
    type: 'string',
    describe:
      "the server's images folder as this worker sees it (a shared mount); when it is the server's own, " +
      'originals are read and results written there by path, not through the API',
  },
  'rpc-port': { type: 'number', default: 0, describe: "port of this worker's JSON-RPC socket (0: any free port)" },
  'drain-ms': { type: 'number', default: 30_000, describe: 'on SIGTERM, how long running jobs may take to finish' },
  'job-deadline': {
    type: 'string',
    default: formatDuration(DEFAULT_JOB_DEADLINE_MS),
    describe:
      'a job not done this long after it started (90s, 5m) is given up and reported as a retryable failure; ' +
      "keep it under the server's --job-timeout",
  },
  'max-memory': {
    type: 'string',
    describe:
      'memory the running jobs may take together, by their estimate from the image size (512MB, 4GB); ' +
      'a job that does not fit beside the running ones is declined (default: half of the memory)',
  },
  'http-timeout': {
    type: 'string',
    default: formatDuration(DEFAULT_HTTP_TIMEOUTS.totalMs),
    describe: 'the longest one call to the API (a download or an upload, body included) may take: 30s, 2m, ...',
  },
  'http-idle-timeout': {
    type: 'string',
    default: formatDuration(DEFAULT_HTTP_TIMEOUTS.idleMs),
    describe: 'a call to the API that sends and receives nothing this long fails (at most --http-timeout)',
  },
  ...LOG_OPTIONS,
} as const;

export function parseWorkerArgs(argv: string[], env: NodeJS.ProcessEnv): WorkerConfig {
  dropForeignEnv(env, 'DPIP', Object.keys(WORKER_OPTIONS));
  const args = yargs(argv)
    .scriptName('dpip-worker')
    // a flag given twice means its last value, as in most programs (not a list that no option expects)
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .usage('$0 --controller host:port[,host:port...] --worker-name NAME [--tags a,b]')
    .env('DPIP')
    .options(WORKER_OPTIONS)
    .strict()
    .help()
    .parseSync();

  const controllers = parseControllers(args.controller);
  const name =
    args.workerName ??
    `${
      hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '-')
        .replace(/^[^A-Za-z0-9]+/, '') || 'worker'
    }-${process.pid}`;
  const nameCheck = workerNameSchema.safeParse(name);
  if (!nameCheck.success) throw new Error(`--worker-name: ${nameCheck.error.issues[0]?.message}`);
  const tags = tagsSchema.safeParse(
    args.tags
      .split(',')
      .map((tag) => tag.trim())
      .filter(Boolean),
  );
  if (!tags.success) throw new Error('--tags: up to 32 tags of letters, digits, "_", "." and "-", separated by commas');
  // without --secret: the first controller listed says whether the server is on this machine (its data dir, the secret)
  const { secret, file: secretFile } = args.secret
    ? { secret: args.secret, file: null }
    : findWorkerSecret({ controllerHost: controllers[0].host, argv, dataDir: path.resolve(args.dataDir) });
  if (!Number.isInteger(args.slots) || args.slots < 1 || args.slots > 256)
    throw new Error('--slots must be a whole number from 1 to 256');
  const prefetch = parsePrefetch(args.prefetch, 'prefetch');
  const engineThreads = args.engineThreads ?? null;
  if (engineThreads !== null && (!Number.isInteger(engineThreads) || engineThreads < 1 || engineThreads > 256))
    throw new Error('--engine-threads must be a whole number from 1 to 256');
  const jobDeadlineMs = durationFlag('job-deadline', args.jobDeadline, 100, 7 * 86_400_000);
  let maxMemoryBytes = defaultMemoryBudget();
  if (args.maxMemory !== undefined) {
    try {
      maxMemoryBytes = parseSize(args.maxMemory);
    } catch (error) {
      throw new Error(`--max-memory: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (maxMemoryBytes < 2 ** 20) throw new Error('--max-memory must be at least 1MB');
  }
  const totalMs = durationFlag('http-timeout', args.httpTimeout, 100, 86_400_000);
  // silence longer than the whole call could never be noticed; connecting is given no longer than silence
  const idleMs = Math.min(totalMs, durationFlag('http-idle-timeout', args.httpIdleTimeout, 100, 86_400_000));
  const httpTimeouts: HttpTimeouts = {
    connectMs: Math.min(DEFAULT_HTTP_TIMEOUTS.connectMs, idleMs),
    idleMs,
    totalMs,
  };
  return {
    controllers,
    name,
    tags: tags.data,
    slots: args.slots,
    prefetch,
    engineThreads,
    engine: args.engine,
    secret,
    secretFile,
    advertiseHost: args.advertiseHost ?? null,
    rpcPort: args.rpcPort,
    drainMs: args.drainMs,
    jobDeadlineMs,
    maxMemoryBytes,
    httpTimeouts,
    imagesDir: args.imagesDir ? path.resolve(args.imagesDir) : null,
    logLevel: args.logLevel,
    logFormat: args.logFormat,
  };
}
