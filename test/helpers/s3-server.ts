// An S3-compatible server for tests: s3rver (which does not check signatures) on 127.0.0.1, on a free
// port and a fresh directory, with one bucket. It runs in a child process, so that a test can stop it
// (an outage: connections refused) and start it again on the same port and directory.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3StoreConfig } from '../../controller/image-store/index.js';
import { freePorts } from './ports.js';
import { spawnNode, type Spawned } from './processes.js';

const CHILD = fileURLToPath(new URL('./s3-server-child.js', import.meta.url));
/** s3rver keeps an object's bytes in `<directory>/<bucket>/<key>._S3rver_object`. */
const OBJECT_SUFFIX = '._S3rver_object';
const START_TIMEOUT_MS = 15_000;
/**
 * s3rver encrypts its ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node 17 and later)
 * leaves out: without the legacy provider every listing past its first page answers 500.
 */
const NODE_ARGS = ['--openssl-legacy-provider'];

export interface TestS3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  port: number;
  /**
   * What a process needs to use it through the AWS SDK's default credential chain: s3rver's fixed keys,
   * the region, and the SDK's Node-version warning turned off (it is noise in test output).
   */
  env: Record<string, string>;
  /** A folder beside the server's, for a store's staging. */
  stagingDir: string;
  /** Kills the server (SIGKILL, as a crash): connections are refused until start(). */
  stop(): Promise<void>;
  /** Starts it again, on the same port and directory, with the objects it had. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  /** Every key in the bucket, sorted, read from the server's directory (stopped or not). */
  objectKeys(): Promise<string[]>;
}

function listening(spawned: Spawned): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${spawned.output()}`)), START_TIMEOUT_MS);
    const onData = () => {
      if (!spawned.output().includes('listening')) return;
      clearTimeout(timer);
      spawned.child.stdout!.off('data', onData);
      resolve();
    };
    spawned.child.stdout!.on('data', onData);
    spawned.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code ?? signal}) before it listened: ${spawned.output()}`));
    });
  });
}

async function walk(dir: string, prefix: string, into: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await walk(path.join(dir, entry.name), `${prefix}${entry.name}/`, into);
    else if (entry.name.endsWith(OBJECT_SUFFIX)) into.push(prefix + entry.name.slice(0, -OBJECT_SUFFIX.length));
  }
}

/**
 * Starts the server with its bucket; with `cors`, the bucket has a CORS rule that lets a page of any
 * origin PUT and GET with a Content-Type header (a browser's upload to a presigned URL).
 */
export async function startS3Server(options: { bucket?: string; cors?: boolean } = {}): Promise<TestS3Server> {
  const bucket = options.bucket ?? 'dpip-test';
  const root = await mkdtemp(path.join(tmpdir(), 'dpip-s3-'));
  const directory = path.join(root, 's3');
  const stagingDir = path.join(root, 'staging');
  await mkdir(directory);
  const port = await freePorts();
  let running: Spawned | null = null;

  const server: TestS3Server = {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    port,
    env: {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stagingDir,
    async start() {
      if (running) return;
      const spawned = spawnNode(
        CHILD,
        [String(port), directory, bucket, ...(options.cors ? ['cors'] : [])],
        {},
        NODE_ARGS,
      );
      running = spawned;
      try {
        await listening(spawned);
      } catch (error) {
        running = null;
        await spawned.kill();
        throw error;
      }
    },
    async stop() {
      const spawned = running;
      running = null;
      await spawned?.kill('SIGKILL');
    },
    async close() {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
    async objectKeys() {
      const keys: string[] = [];
      await walk(path.join(directory, bucket), '', keys).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      return keys.sort();
    },
  };
  try {
    await server.start();
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  return server;
}

/** A store configuration for the test server: under prefix 'dpip-test', path-style, us-east-1. */
export function storeConfigFor(server: TestS3Server, overrides: Partial<S3StoreConfig> = {}): S3StoreConfig {
  return {
    bucket: server.bucket,
    prefix: 'dpip-test',
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    stagingDir: server.stagingDir,
    ...overrides,
  };
}

/**
 * Sets environment variables of this process (undefined: unset), for the AWS SDK's default chain to
 * find; returns what puts them back as they were.
 */
export function setEnv(values: Record<string, string | undefined>): () => void {
  const before = new Map(Object.keys(values).map((name) => [name, process.env[name]]));
  const apply = (from: Iterable<[string, string | undefined]>) => {
    for (const [name, value] of from) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(Object.entries(values));
  return () => apply(before);
}
