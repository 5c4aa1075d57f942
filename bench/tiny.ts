// Tiny jobs by path: 64x64 PNGs, filter grayscale, through a `dpip` server and two `dpip-worker` processes
// (one slot each by default) that read originals and write results in the server's images folder. Nearly all
// the cost is the system's own. Prints, per round, jobs/s end to end (first upload to last result) and the CPU
// per job of the server (with its kernel share), of the workers (theirs) and of this client. argv: jobs (default 2000);
// env ROUNDS (default 3), UPLOADS (uploads in flight, default 8), SLOTS (each worker's --slots, default 1),
// PREFETCH (each worker's --prefetch; default: theirs, auto),
// WARMUP (rounds run first on the same system and not counted, default 1: a server and its workers run for days,
// and their JIT compiles for the first several hundred jobs; bench/paired.ts).
// Compare with `npm run bench:bullmq` (the same count of jobs through BullMQ and Redis on this machine).
import { loadavg } from 'node:os';
import { makeTestImage } from '../test/helpers/images.js';
import { cpuSplitMs, removeRunDirs, startSystem, uploadAll, waitDone, type RunningSystem } from './system-run.js';

const COUNT = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UPLOADS = Number(process.env.UPLOADS ?? 8);
const SLOTS = Number(process.env.SLOTS ?? 1);
const PREFETCH = process.env.PREFETCH ?? 'auto';
const WARMUP = Number(process.env.WARMUP ?? 1);
/** What the issue measured for BullMQ and Redis (two workers, trivial jobs): jobs/s. */
const BULLMQ_RANGE = [580, 900] as const;

const tiny: Buffer[] = [];
for (let seed = 1; seed <= 16; seed++) tiny.push(await makeTestImage(64, 64, 'image/png', seed));
const images = Array.from({ length: COUNT }, (_, index) => tiny[index % tiny.length]!);

interface Round {
  jobsPerSecond: number;
  /** Uploads alone: every original accepted, jobs/s. */
  uploadsPerSecond: number;
  server: number;
  serverKernel: number;
  workers: number[];
  workersKernel: number;
  client: number;
  fileCreationMicros: number;
}

async function round(system: RunningSystem): Promise<Round> {
  const { client } = system;
  const workload = await client.createWorkload({ filter: 'grayscale' });
  const serverBefore = await cpuSplitMs(system.serverPid);
  const workersBefore = await Promise.all(system.workerPids.map(cpuSplitMs));
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  await uploadAll(client, workload.workload_id, images, 'image/png', UPLOADS, 'raw');
  const uploaded = performance.now();
  const finished = await waitDone(client, workload.workload_id, COUNT);
  const clientCpu = process.cpuUsage(clientBefore);
  const serverAfter = await cpuSplitMs(system.serverPid);
  const workersAfter = await Promise.all(system.workerPids.map(cpuSplitMs));
  const kernel = serverAfter.kernel - serverBefore.kernel;
  return {
    jobsPerSecond: COUNT / ((finished - started) / 1000),
    uploadsPerSecond: COUNT / ((uploaded - started) / 1000),
    server: (serverAfter.user - serverBefore.user + kernel) / COUNT,
    serverKernel: kernel / COUNT,
    workers: workersAfter.map((after, index) => (total(after) - total(workersBefore[index]!)) / COUNT),
    workersKernel:
      workersAfter.reduce((sum, after, index) => sum + after.kernel - workersBefore[index]!.kernel, 0) / COUNT,
    client: (clientCpu.user + clientCpu.system) / 1000 / COUNT,
    fileCreationMicros: system.fileCreationMicros,
  };
}

const total = (split: { user: number; kernel: number }): number => split.user + split.kernel;
const ms = (value: number): string => value.toFixed(2);
function describe(row: Round): string {
  return (
    `${row.jobsPerSecond.toFixed(0)} jobs/s end to end (uploads alone ${row.uploadsPerSecond.toFixed(0)}/s); ` +
    `CPU ms per job: server ${ms(row.server)} (${ms(row.serverKernel)} in the kernel), ` +
    `workers ${ms(row.workers.reduce((sum, value) => sum + value, 0))} ` +
    `(${row.workers.map(ms).join(' + ')}; ${ms(row.workersKernel)} in the kernel), ` +
    `this client ${ms(row.client)} (a file creation cost ${(row.fileCreationMicros / 1000).toFixed(3)} ms before)`
  );
}

console.log(
  `tiny jobs by path: ${COUNT} 64x64 PNGs, grayscale, sharp, two dpip-worker processes with --images-dir ` +
    `(${SLOTS} slot${SLOTS === 1 ? '' : 's'} and --prefetch ${PREFETCH} each), ` +
    `${UPLOADS} uploads in flight as whole bodies; ${ROUNDS} rounds ` +
    `on one running system, after ${WARMUP} not counted`,
);
const rounds: Round[] = [];
const system = await startSystem('sharp', 0, {
  workers: { count: 2, byPath: true, slots: SLOTS, ...(process.env.PREFETCH ? { prefetch: PREFETCH } : {}) },
});
try {
  for (let index = 1 - WARMUP; index <= ROUNDS; index++) {
    const load = loadavg()[0]!.toFixed(2);
    const row = await round(system);
    if (index >= 1) rounds.push(row);
    const name = index >= 1 ? `round ${index}` : `warm-up ${index + WARMUP}`;
    console.log(`  ${name} (load average ${load} before it): ${describe(row)}`);
  }
} finally {
  await system.stop();
}
await removeRunDirs();
const rates = rounds.map((row) => row.jobsPerSecond).sort((a, b) => a - b);
const median = rates[Math.floor((rates.length - 1) / 2)]!;
console.log(
  `tiny jobs by path: ${rates[0]!.toFixed(0)}-${rates.at(-1)!.toFixed(0)} jobs/s (median ${median.toFixed(0)}); ` +
    `BullMQ + Redis in the issue: ${BULLMQ_RANGE[0]}-${BULLMQ_RANGE[1]} jobs/s ` +
    `(median ${(median / BULLMQ_RANGE[0]).toFixed(2)}x its low end; \`npm run bench:bullmq\` measures it here)`,
);
