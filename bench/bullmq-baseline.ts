// The baseline for tiny jobs: BullMQ and Redis on this machine. A Redis of its own (Debian's redis-server,
// installed with apt-get when missing; no snapshots, no append-only file, on a free port and a temp dir),
// two worker processes (BullMQ Workers, concurrency 1 each, as DPIP's two workers have one slot each), and
// this process adding the jobs, 8 in flight (as bench/tiny.ts uploads 8 at a time), then waiting until
// every job is completed. Per round: jobs/s from the first add to the last completion, and the CPU per job
// of Redis, of the workers and of this process. Two kinds of work (env WORK, default both):
//   trivial    the processor returns at once;
//   grayscale  the processor runs DPIP's own sharp engine (worker/engines) on a 64x64 PNG the worker holds
//              in memory: the same tiny work as bench/tiny.ts, with no bytes moved (the job's data is a number).
// argv: jobs (default 2000); env ROUNDS (default 3), WARMUP (rounds first, not counted, default 1), all on the same
// two running workers per kind of work. Completed jobs stay in Redis (BullMQ's default), as
// DPIP keeps its job records; nothing is durable (Redis keeps no file), where DPIP syncs every record, unless
// env REDIS_FSYNC=always (an append-only file, synced on every write before Redis answers).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { freePorts } from '../test/helpers/ports.js';
import { spawnNode, waitFor, type Spawned } from '../test/helpers/processes.js';
import { cpuMs } from './system-run.js';

type Work = 'trivial' | 'grayscale';
const SELF = fileURLToPath(import.meta.url);
const IN_FLIGHT = 8;

/** A worker process: `worker <redis port> <queue> <work>`; prints "ready" once it takes jobs, stops on SIGTERM. */
async function workerMain(port: number, queueName: string, work: Work): Promise<void> {
  let processor: () => Promise<number>;
  if (work === 'grayscale') {
    const { makeTestImage } = await import('../test/helpers/images.js');
    const { createEngine } = await import('../worker/engines/index.js');
    const engine = await createEngine('sharp', 1);
    const png = await makeTestImage(64, 64, 'image/png', 1);
    processor = async () => (await engine.apply('grayscale', png)).data.length;
  } else processor = async () => 0;
  const worker = new Worker(queueName, processor, { connection: { host: '127.0.0.1', port }, concurrency: 1 });
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    void worker.close().then(() => process.exit(0));
  });
}

/** Debian's redis-server, installed when missing (apt-get update first only if the install fails). */
function redisServer(): string {
  const find = (): string | null => {
    try {
      return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || null;
    } catch {
      return null;
    }
  };
  const found = find();
  if (found) return found;
  console.log('redis-server is missing: apt-get install -y redis-server');
  const install = (): void => {
    execFileSync('apt-get', ['install', '-y', 'redis-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    install();
  }
  const installed = find();
  if (!installed) throw new Error('redis-server is still missing after apt-get install');
  return installed;
}

interface Redis {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startRedis(): Promise<Redis> {
  const binary = redisServer();
  const dir = await mkdtemp(path.join(tmpdir(), 'dpip-redis-'));
  const port = await freePorts();
  // REDIS_FSYNC=always: every write in an append-only file synced before Redis answers, durable as DPIP's records are
  const durable = process.env.REDIS_FSYNC === 'always';
  const persistence = durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  process.on('exit', () => child.kill('SIGKILL'));
  await waitFor('redis-server', async () => output.includes('Ready to accept connections'), 15_000).catch(
    (error: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${String(error)}\n${output}`);
    },
  );
  const version = /version=([^\s,]+)/.exec(output)?.[1] ?? 'unknown';
  const kept = durable ? 'an append-only file synced on every write' : 'no append-only file';
  console.log(`redis-server ${version} (${binary}) on port ${port}, no snapshots, ${kept}`);
  return {
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Round {
  jobsPerSecond: number;
  addsPerSecond: number;
  redis: number;
  workers: number[];
  producer: number;
}

function startWorker(port: number, queueName: string, work: Work): Spawned {
  return spawnNode(SELF, ['worker', String(port), queueName, work]);
}

/** The queue of one kind of work, and the two worker processes that take its jobs. */
interface Bench {
  queue: Queue;
  /** Redis's, then the workers'. */
  pids: number[];
  close(): Promise<void>;
}

async function startBench(redis: Redis, work: Work): Promise<Bench> {
  const name = `bench-${work}`;
  const workers = [startWorker(redis.port, name, work), startWorker(redis.port, name, work)];
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: redis.port } });
  const close = async (): Promise<void> => {
    await queue.close();
    await Promise.all(workers.map((worker) => worker.kill('SIGTERM')));
  };
  try {
    await waitFor('two BullMQ workers', async () => workers.every((worker) => worker.output().includes('ready')));
  } catch (error) {
    await close();
    throw error;
  }
  return { queue, pids: [redis.pid, ...workers.map((worker) => worker.child.pid!)], close };
}

/** `count` more jobs through the bench's running workers, until each is completed. */
async function round({ queue, pids }: Bench, count: number): Promise<Round> {
  const completedBefore = await queue.getCompletedCount();
  const before = await Promise.all(pids.map(cpuMs));
  const producerBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) {
        const at = next++;
        await queue.add('tiny', { index: at });
      }
    }),
  );
  const added = performance.now();
  for (;;) {
    const [completed, failed] = await Promise.all([queue.getCompletedCount(), queue.getFailedCount()]);
    if (failed > 0) throw new Error(`${failed} BullMQ jobs failed`);
    if (completed - completedBefore >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const finished = performance.now();
  const producerCpu = process.cpuUsage(producerBefore);
  const spent = (await Promise.all(pids.map(cpuMs))).map((after, at) => (after - before[at]!) / count);
  return {
    jobsPerSecond: count / ((finished - started) / 1000),
    addsPerSecond: count / ((added - started) / 1000),
    redis: spent[0]!,
    workers: spent.slice(1),
    producer: (producerCpu.user + producerCpu.system) / 1000 / count,
  };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2000);
  const rounds = Number(process.env.ROUNDS ?? 3);
  // as bench/tiny.ts: rounds on running workers, after warm-up rounds not counted
  const warmups = Number(process.env.WARMUP ?? 1);
  const works = (process.env.WORK ?? 'trivial,grayscale').split(',') as Work[];
  for (const work of works)
    if (work !== 'trivial' && work !== 'grayscale') throw new Error(`WORK: trivial or grayscale, not ${work}`);
  const redis = await startRedis();
  try {
    console.log(
      `BullMQ baseline: ${count} jobs, two worker processes (concurrency 1 each), ${IN_FLIGHT} adds in flight; ` +
        `${rounds} rounds per kind of work on the same running workers, after ${warmups} not counted`,
    );
    const ms = (value: number): string => value.toFixed(2);
    for (const work of works) {
      const rates: number[] = [];
      const bench = await startBench(redis, work);
      try {
        for (let index = 1 - warmups; index <= rounds; index++) {
          const load = loadavg()[0]!.toFixed(2);
          const row = await round(bench, count);
          if (index >= 1) rates.push(row.jobsPerSecond);
          const name = index >= 1 ? `round ${index}` : `warm-up ${index + warmups}`;
          console.log(
            `  ${work.padEnd(9)} ${name} (load average ${load} before it): ` +
              `${row.jobsPerSecond.toFixed(0)} jobs/s end to end (adds alone ${row.addsPerSecond.toFixed(0)}/s); ` +
              `CPU ms per job: redis ${ms(row.redis)}, ` +
              `workers ${ms(row.workers.reduce((sum, value) => sum + value, 0))} ` +
              `(${row.workers.map(ms).join(' + ')}), this producer ${ms(row.producer)}`,
          );
        }
      } finally {
        await bench.close();
      }
      rates.sort((a, b) => a - b);
      console.log(
        `  ${work.padEnd(9)} ${rates[0]!.toFixed(0)}-${rates.at(-1)!.toFixed(0)} jobs/s ` +
          `(median ${rates[Math.floor((rates.length - 1) / 2)]!.toFixed(0)})`,
      );
    }
  } finally {
    await redis.stop();
  }
}

if (process.argv[2] === 'worker') await workerMain(Number(process.argv[3]), process.argv[4]!, process.argv[5] as Work);
else await main();
