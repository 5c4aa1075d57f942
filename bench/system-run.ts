// Shared by the whole-system benchmarks: a real `dpip` server process with local workers on temp
// dirs and free ports, a logged-in client, and the server's CPU time and memory from /proc.
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { multipartBody } from './multipart.js';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { sharedEngineThreads } from '../bin/local-workers.js';
import { withNodeFlags } from '../bin/node-flags.js';
import path from 'node:path';
import { TestClient } from '../test/helpers/api.js';
import { freePorts } from '../test/helpers/ports.js';
import { DIST_BIN, spawnNode, waitFor, type Spawned } from '../test/helpers/processes.js';
import { makeDirs, type TestDirs } from '../test/helpers/system.js';

/**
 * The runs' directories, removed together at the end (removeRunDirs), or kept with KEEP_DIRS=1 (for runs back
 * to back). On this machine's disk (ext4 without a journal: /sys/fs/ext4/<disk>/journal_task is empty), a new
 * file's inode is searched from the start of its block group, and every free inode deleted in the last 60 s
 * (360 s while its inode table block is unwritten) is read and skipped (the kernel's `recently_deleted` in
 * `find_inode_bit`): a creation costs about 0.01 ms on a quiet disk and up to 0.7 ms after thousands of
 * deletions. Removing one round's images right before the next would charge that round for it.
 */
const runDirs: TestDirs[] = [];

export async function removeRunDirs(): Promise<void> {
  const dirs = runDirs.splice(0);
  if (process.env.KEEP_DIRS === '1') {
    console.log(`kept (KEEP_DIRS=1): ${dirs.map((dir) => dir.root).join(' ')}`);
    return;
  }
  await Promise.all(dirs.map((dir) => dir.remove()));
}

const QUIET_CREATION_MICROS = 30;
/** The longest an inode stays "recently deleted" (see runDirs). */
const QUIET_WAIT_MS = 360_000;

/**
 * Waits (up to six minutes) until a file creation in `directory` costs the kernel under 0.03 ms again, so a
 * run is not charged for deletions made before it (by an earlier benchmark, a test run, anything). Returns the
 * last cost measured (in the run's own folder, beside the images folder).
 */
async function quietDisk(directory: string): Promise<number> {
  const started = Date.now();
  let micros = fileCreationMicros(directory);
  let announced = false;
  while (micros > QUIET_CREATION_MICROS && Date.now() - started < QUIET_WAIT_MS) {
    if (!announced)
      console.log(
        `  (a file creation costs ${(micros / 1000).toFixed(3)} ms of kernel time: waiting for the disk to settle)`,
      );
    announced = true;
    await new Promise((resolve) => setTimeout(resolve, 5000));
    micros = fileCreationMicros(directory);
  }
  return micros;
}

let probes = 0;

/**
 * CPU microseconds (nearly all of it the kernel's) per file creation in a directory, right now (the
 * files stay, see runDirs).
 */
function fileCreationMicros(directory: string, files = 200): number {
  const before = process.cpuUsage();
  for (let index = 0; index < files; index++)
    closeSync(openSync(path.join(directory, `creation-probe-${probes++}`), 'wx'));
  const spent = process.cpuUsage(before);
  return (spent.system + spent.user) / files;
}

export interface RunningSystem {
  client: TestClient;
  serverPid: number;
  /** The worker processes: the server's local workers, or the ones started beside it (SystemOptions.workers). */
  workerPids: number[];
  /** The server's images folder. */
  imagesDir: string;
  /**
   * CPU microseconds (nearly all the kernel's) per file creation next to the server's images
   * directory, just before the run.
   */
  fileCreationMicros: number;
  stop(): Promise<void>;
}

/** Worker processes of their own beside the server (`dpip-worker`, as `npm run worker` starts them). */
export interface OwnWorkers {
  count: number;
  /** Each worker is given the server's images folder (--images-dir): it moves bytes by path. */
  byPath: boolean;
  /** --slots of each (default 1: the server's local workers get cores / workers, 1 on two cores). */
  slots?: number;
  /** --prefetch of each (default: the worker's own default). */
  prefetch?: string;
}

export interface SystemOptions {
  /** Workers of their own instead of the server's local ones: the server then runs with `--workers 0`. */
  workers?: OwnWorkers;
  /** More flags for the server (`--image-store s3 ...`). */
  serverArgs?: string[];
  /** More environment for the server and every worker (the AWS SDK's, say). */
  env?: Record<string, string>;
}

const BENCH_SECRET = 'bench-cluster-secret';

/**
 * The server starts as `npm start` starts it: with the malloc tunables (its local workers get them from it) and
 * its node flags (bin/node-flags.ts).
 * With options.workers, it starts no local workers, and that many `dpip-worker` processes are started beside
 * it, with the malloc tunables and a worker's node flags too (as `npm run worker` runs them).
 */
export async function startSystem(
  engine: 'sharp' | 'jimp',
  workers: number,
  options: SystemOptions = {},
): Promise<RunningSystem> {
  const dirs = await makeDirs();
  runDirs.push(dirs);
  const creationMicros = await quietDisk(dirs.root);
  const controllerPort = await freePorts(3);
  const apiPort = await freePorts();
  const own = options.workers;
  // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (workers inherit it)
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const tunables = { GLIBC_TUNABLES: withMallocTunables(process.env).GLIBC_TUNABLES };
  const server = spawnNode(
    path.join(DIST_BIN, 'dpip.js'),
    [
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
      '--engine',
      engine,
      '--workers',
      String(own ? 0 : workers),
      '--users',
      'bench:bench-pw',
      '--log-level',
      process.env.BENCH_LOG_LEVEL ?? 'warn',
      ...(own ? ['--secret', BENCH_SECRET] : []),
      ...(options.serverArgs ?? []),
    ],
    { ...options.env, ...tunables },
    // as `npm start` starts it; BENCH_SERVER_FLAGS=off: without them, for a comparison
    process.env.BENCH_SERVER_FLAGS === 'off' ? nodeArgs : withNodeFlags('dpip', nodeArgs),
  );
  const spawned: Spawned[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(spawned.map((worker) => worker.kill('SIGTERM')));
    await server.kill('SIGTERM');
  };
  const url = `http://127.0.0.1:${apiPort}`;
  try {
    await waitFor('the server', async () => (await fetch(`${url}/status`)).status === 401, 20_000);
    for (let index = 1; own && index <= own.count; index++) {
      const args = ['--controller', `127.0.0.1:${controllerPort}`, '--worker-name', `bench-${index}`];
      args.push('--engine', engine, '--slots', String(own.slots ?? 1), '--log-level', 'warn');
      if (own.prefetch !== undefined) args.push('--prefetch', String(own.prefetch));
      // as the server's local workers: the cores shared among every job the workers run at once
      args.push('--engine-threads', String(sharedEngineThreads(own.count, own.slots ?? 1)));
      if (own.byPath) args.push('--images-dir', dirs.imagesDir);
      const env = { ...options.env, ...tunables, DPIP_SECRET: BENCH_SECRET };
      spawned.push(spawnNode(path.join(DIST_BIN, 'dpip-worker.js'), args, env, withNodeFlags('dpip-worker', nodeArgs)));
    }
    const client = await TestClient.login(url, 'bench', 'bench-pw');
    const expected = own ? own.count : workers;
    await waitFor(`${expected} workers`, async () => {
      const status = (await (await fetch(`${url}/status`, { headers: client.headers() })).json()) as {
        workers: { alive: number };
      };
      return status.workers.alive >= expected;
    });
    const workerPids = own
      ? spawned.map((worker) => worker.child.pid!)
      : await waitFor('the local workers', async () => {
          const pids = await childPids(server.child.pid!);
          return pids.length >= workers ? pids : null;
        });
    return {
      client,
      serverPid: server.child.pid!,
      workerPids,
      imagesDir: dirs.imagesDir,
      fileCreationMicros: creationMicros,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw new Error(`the system did not start: ${String(error)}\n${server.output()}`);
  }
}

/** CPU time a process has used so far, in ms, split into user and kernel (system) time. */
export async function cpuSplitMs(pid: number): Promise<{ user: number; kernel: number }> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const toMs = (ticks: string | undefined): number => (Number(ticks) * 1000) / 100; // USER_HZ is 100 on Linux
  return { user: toMs(fields[11]), kernel: toMs(fields[12]) }; // utime, stime (fields 14 and 15 of stat)
}

/** CPU time (user + system) a process has used so far, in ms. */
export async function cpuMs(pid: number): Promise<number> {
  const { user, kernel } = await cpuSplitMs(pid);
  return user + kernel;
}

/** What some processes and this one spent on a piece of work, in CPU ms. */
export interface Spent<T> {
  value: T;
  /** Each process's, in the order of the meter's pids. */
  processes: number[];
  /** This process's. */
  client: number;
}

/** The CPU of some processes and of this one around pieces of work, summed over those counted. */
export class CpuMeter {
  /** Each process's total over the counted pieces, ms. */
  readonly processes: number[];
  /** This process's total over the counted pieces, ms. */
  client = 0;

  constructor(private readonly pids: readonly number[]) {
    this.processes = pids.map(() => 0);
  }

  async measure<T>(counted: boolean, work: () => Promise<T>): Promise<Spent<T>> {
    const before = await Promise.all(this.pids.map(cpuMs));
    const clientBefore = process.cpuUsage();
    const value = await work();
    const clientCpu = process.cpuUsage(clientBefore);
    const processes = (await Promise.all(this.pids.map(cpuMs))).map((after, index) => after - before[index]!);
    const client = (clientCpu.user + clientCpu.system) / 1000;
    if (counted) {
      for (const [index, used] of processes.entries()) this.processes[index]! += used;
      this.client += client;
    }
    return { value, processes, client };
  }
}

/** The pids of a process's direct children (local workers of a server). */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/**
 * How the benchmark client uploads (env BENCH_UPLOAD): `raw`, the image as the whole body with
 * workload_id in the query string (the API's cheaper form, what a program would use), or
 * `multipart`, the form the course's clients send.
 */
export type UploadForm = 'raw' | 'multipart';

export function uploadForm(): UploadForm {
  const form = process.env.BENCH_UPLOAD ?? 'raw';
  if (form !== 'raw' && form !== 'multipart') throw new Error(`BENCH_UPLOAD must be raw or multipart, not ${form}`);
  return form;
}

/** How the uploads go, for the benchmark's first line. */
export function describeUploadForm(form: UploadForm): string {
  return form === 'raw'
    ? "uploads as whole bodies (BENCH_UPLOAD=multipart for the course clients' forms)"
    : 'uploads as multipart forms, as the course clients send them';
}

interface LaidOut {
  contentType: string;
  parts: Buffer[];
  length: number;
}

/**
 * Uploads every image with a fixed number in flight; resolves when all are accepted. The client
 * shares the machine with the system it measures, so it does as little as a client can: every
 * body is laid out up front (framing only: the image bytes are not copied) and written with
 * node:http on kept-alive sockets.
 */
export async function uploadAll(
  client: TestClient,
  workloadId: string,
  images: Buffer[],
  mime: string,
  concurrency: number,
  form: UploadForm,
): Promise<void> {
  const url = new URL(
    form === 'raw' ? `${client.url}/images?workload_id=${encodeURIComponent(workloadId)}` : `${client.url}/images`,
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const extension = mime === 'image/png' ? 'png' : 'jpg';
  const bodies = images.map(
    (data, index): LaidOut =>
      form === 'raw'
        ? { contentType: mime, parts: [data], length: data.length }
        : multipartBody(
            { workload_id: workloadId },
            { field: 'data', filename: `${index}.${extension}`, type: mime, data },
          ),
  );
  const post = (index: number): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const body = bodies[index]!;
      const headers = { ...client.headers(), 'content-type': body.contentType, 'content-length': body.length };
      const request = http.request(url, { method: 'POST', agent, headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on('error', reject);
      for (const part of body.parts) request.write(part);
      request.end();
    });
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < images.length) {
          const index = next++;
          const reply = await post(index);
          if (reply.status !== 201) throw new Error(`upload ${index} failed: ${reply.status} ${reply.body}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

/**
 * Polls until every image has a final state; returns the end time. The poll interval grows with the
 * wait (1/50 of it, 50 to 500 ms): the end time stays within 2% while a long run is not charged for
 * thousands of polls.
 */
export async function waitDone(client: TestClient, workloadId: string, expected: number): Promise<number> {
  const waitStart = performance.now();
  for (;;) {
    const view = await client.workload(workloadId);
    if (view.done_jobs + view.failed_jobs >= expected) {
      if (view.failed_jobs > 0)
        throw new Error(`${view.failed_jobs} jobs failed: ${JSON.stringify(view.failures.slice(0, 3))}`);
      return performance.now();
    }
    const interval = Math.min(500, Math.max(50, (performance.now() - waitStart) / 50));
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

interface Reply {
  status: number;
  body: string;
}

/** One request on a kept-alive agent, its body written from parts (nothing copied). */
function send(
  url: URL,
  method: string,
  headers: Record<string, string | number>,
  parts: Buffer[],
  agent: http.Agent,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    for (const part of parts) request.write(part);
    request.end();
  });
}

interface SlotAnswer {
  image_id: string;
  upload: { method: string; url: string; headers?: Record<string, string> };
}

interface ConfirmAnswer {
  results: { image_id: string; status: number; error?: { message: string } }[];
}

/**
 * Uploads every image around the server, through upload slots, `batch` images a request: `POST /uploads` (a
 * slot and its presigned PUT for each), the PUT of each one's bytes to the object store, then `POST
 * /uploads/confirm` for them all; `concurrency` batches in flight, so as many PUTs. Resolves when every image is
 * confirmed.
 */
export async function uploadAllBySlots(
  client: TestClient,
  workloadId: string,
  images: Buffer[],
  mime: string,
  concurrency: number,
  batch: number,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const store = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const json = (value: unknown): { headers: Record<string, string | number>; body: Buffer } => {
    const body = Buffer.from(JSON.stringify(value));
    return {
      headers: { ...client.headers(), 'content-type': 'application/json', 'content-length': body.length },
      body,
    };
  };
  const some = async (indexes: number[]): Promise<void> => {
    const asked = json({
      workload_id: workloadId,
      images: indexes.map((index) => ({ content_type: mime, bytes: images[index]!.length })),
    });
    const opened = await send(new URL(`${client.url}/uploads`), 'POST', asked.headers, [asked.body], agent);
    if (opened.status !== 201) throw new Error(`slots for ${indexes.length} refused: ${opened.status} ${opened.body}`);
    const slots = (JSON.parse(opened.body) as { slots: SlotAnswer[] }).slots;
    for (const [position, slot] of slots.entries()) {
      const data = images[indexes[position]!]!;
      const putHeaders = { ...slot.upload.headers, 'content-length': data.length };
      const put = await send(new URL(slot.upload.url), slot.upload.method, putHeaders, [data], store);
      if (put.status !== 200)
        throw new Error(`PUT ${indexes[position]} to the store failed: ${put.status} ${put.body.slice(0, 200)}`);
    }
    const confirm = json({ image_ids: slots.map((slot) => slot.image_id) });
    const confirmed = await send(
      new URL(`${client.url}/uploads/confirm`),
      'POST',
      confirm.headers,
      [confirm.body],
      agent,
    );
    if (confirmed.status !== 200) throw new Error(`confirm failed: ${confirmed.status} ${confirmed.body}`);
    const refused = (JSON.parse(confirmed.body) as ConfirmAnswer).results.find((result) => result.status !== 201);
    if (refused) throw new Error(`confirm of ${refused.image_id} failed: ${refused.status} ${refused.error?.message}`);
  };
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < images.length) {
          const indexes = Array.from({ length: Math.min(batch, images.length - next) }, (_, offset) => next + offset);
          next += indexes.length;
          await some(indexes);
        }
      }),
    );
  } finally {
    agent.destroy();
    store.destroy();
  }
}

/** The pids of this process's children whose command line contains `text` (an s3rver started by a helper). */
export async function ownChildrenRunning(text: string): Promise<number[]> {
  const pids = await childPids(process.pid);
  const matching: number[] = [];
  for (const pid of pids) {
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (command.includes(text)) matching.push(pid);
  }
  return matching;
}
