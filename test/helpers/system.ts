import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../common/log.js';
import { DEFAULT_JOB_TIMEOUT_MS, DEFAULT_RETRY_POLICY } from '../../controller/index.js';
import { startServer, type Server, type ServerConfig } from '../../bin/server.js';
import { freePorts } from './ports.js';
import { DIST_BIN, killAll, spawnNode, waitFor, type Spawned } from './processes.js';

export const TEST_SECRET = 'test-cluster-secret';

export interface TestDirs {
  root: string;
  dataDir: string;
  imagesDir: string;
  remove(): Promise<void>;
}

export async function makeDirs(): Promise<TestDirs> {
  const root = await mkdtemp(path.join(tmpdir(), 'dpip-test-'));
  return {
    root,
    dataDir: path.join(root, 'data'),
    imagesDir: path.join(root, 'images'),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

export async function testServerConfig(
  dirs: TestDirs,
  overrides: Partial<ServerConfig['controller']> = {},
): Promise<ServerConfig> {
  const port = await freePorts(3);
  const apiPort = await freePorts();
  return {
    controller: {
      systemName: 'DPIP-test',
      dataDir: dirs.dataDir,
      imagesDir: dirs.imagesDir,
      bindHost: '127.0.0.1',
      port,
      apiPort,
      publicApiUrl: null,
      clusterSecret: TEST_SECRET,
      leaseMs: 3000,
      heartbeatMs: 500,
      jobTimeoutMs: DEFAULT_JOB_TIMEOUT_MS,
      announceMs: 300,
      retry: { ...DEFAULT_RETRY_POLICY, backoff: { ...DEFAULT_RETRY_POLICY.backoff, baseMs: 100 } },
      userTokenTtlSeconds: 3600,
      workerTokenTtlSeconds: 3600,
      minFreeDiskBytes: 0,
      ...overrides,
    },
    api: {
      systemName: 'DPIP-test',
      host: '127.0.0.1',
      port: apiPort,
      maxUploadBytes: 5 * 1024 * 1024,
      maxPixels: 50_000_000,
      registrationOpen: true,
      maxBodyBytes: 64 * 1024,
    },
    scheduler: { assignTimeoutMs: 3000, tickMs: 100 },
    users: { alice: 'alice-pw', bob: 'bob-pass' },
  };
}

/** The api + controller + scheduler in this process, on loopback with free ports. */
export async function startTestServer(
  dirs: TestDirs,
  overrides: Partial<ServerConfig['controller']> = {},
): Promise<{ server: Server; config: ServerConfig; url: string }> {
  const portsGiven = overrides.port !== undefined || overrides.apiPort !== undefined;
  for (let attempt = 1; ; attempt++) {
    const config = await testServerConfig(dirs, overrides);
    try {
      const server = await startServer(config, createLogger('test-server', 'silent'));
      return { server, config, url: `http://127.0.0.1:${server.api.port}` };
    } catch (error) {
      // the ports were free when chosen; another process may have taken one before the server bound it
      if (portsGiven || attempt === 5 || !portTaken(error)) throw error;
    }
  }
}

/** A bind refused because the port is in use: node's EADDRINUSE, or nanomsg's message. */
function portTaken(error: unknown): boolean {
  return /EADDRINUSE|Address already in use/.test(String(error));
}

export interface WorkerOptions {
  controllerPort: number;
  /** Its --controller as a list of host:port (the servers that may lead), instead of 127.0.0.1:controllerPort. */
  controllers?: string[];
  name: string;
  engine?: 'auto' | 'sharp' | 'jimp';
  slots?: number;
  tags?: string[];
  secret?: string;
  /** The server's images folder as the worker sees it (--images-dir): it then moves bytes by path. */
  imagesDir?: string;
  /** More environment (the AWS SDK's, say). */
  env?: Record<string, string>;
  /** Its --log-level (warn). */
  logLevel?: string;
}

/** A real worker process, as an operator would start it. */
export function spawnWorker(options: WorkerOptions): Spawned {
  const args = [
    '--controller',
    options.controllers?.join(',') ?? `127.0.0.1:${options.controllerPort}`,
    '--worker-name',
    options.name,
    '--engine',
    options.engine ?? 'auto',
    '--log-level',
    options.logLevel ?? 'warn',
  ];
  if (options.slots) args.push('--slots', String(options.slots));
  if (options.tags?.length) args.push('--tags', options.tags.join(','));
  if (options.imagesDir) args.push('--images-dir', options.imagesDir);
  return spawnNode(path.join(DIST_BIN, 'dpip-worker.js'), args, {
    DPIP_SECRET: options.secret ?? TEST_SECRET,
    ...options.env,
  });
}

export interface LaunchOptions {
  /** Its --controller-port (it binds the next two ports too: see freePorts); default: a free one. */
  controllerPort?: number;
}

/** The whole server as its own process (`dpip`), with no local workers unless asked; not waited for. */
export async function launchServer(
  dirs: TestDirs,
  extraArgs: string[] = [],
  options: LaunchOptions = {},
): Promise<{ process: Spawned; url: string; controllerPort: number }> {
  const controllerPort = options.controllerPort ?? (await freePorts(3));
  const apiPort = await freePorts();
  const args = [
    '--port',
    String(apiPort),
    '--controller-port',
    String(controllerPort),
    '--host',
    '127.0.0.1',
    '--data-dir',
    dirs.dataDir,
    '--images-dir',
    dirs.imagesDir,
    '--workers',
    '0',
    '--secret',
    TEST_SECRET,
    '--users',
    'alice:alice-pw,bob:bob-pass',
    '--log-level',
    'warn',
    // the machine's free space is not what these tests are about (the full-disk tests set their own)
    '--min-free-disk',
    '0',
    ...extraArgs,
  ];
  return {
    process: spawnNode(path.join(DIST_BIN, 'dpip.js'), args),
    url: `http://127.0.0.1:${apiPort}`,
    controllerPort,
  };
}

/** The whole server as its own process (`dpip`), once it listens. */
export async function spawnServer(
  dirs: TestDirs,
  extraArgs: string[] = [],
  options: LaunchOptions = {},
): Promise<{ process: Spawned; url: string; controllerPort: number }> {
  const server = await launchServer(dirs, extraArgs, options);
  await waitFor('the server to listen', async () => (await fetch(`${server.url}/status`)).status === 401, 20_000);
  return server;
}

/**
 * Registers hooks (call it inside `describe`) that give each test fresh folders, and after it kill every process
 * the test started and remove the folders, whether it passed or not.
 */
export function freshDirsEachTest(): { readonly dirs: TestDirs } {
  let dirs: TestDirs | null = null;
  beforeEach(async () => {
    dirs = await makeDirs();
  });
  afterEach(async () => {
    await killAll();
    await dirs?.remove();
  });
  return {
    get dirs() {
      if (!dirs) throw new Error("the test's folders are only there inside a test");
      return dirs;
    },
  };
}
