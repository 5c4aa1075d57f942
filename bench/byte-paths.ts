// Byte paths: the three ways image bytes move, on the same work. 200 photo-like 1920x1080 JPEGs (env
// IMAGES), filter blur with sharp, two `dpip-worker` processes (one slot each) beside a `dpip` server, for
// each way (env WAYS, default api,path,presigned):
//   api        the server with --workers 0, workers without --images-dir: originals GET /images/{id},
//              results POST /images; the client uploads whole bodies to POST /images;
//   path       the same workers with --images-dir (the server's folder): originals read and results written
//              there, reported with stored=true; the client uploads whole bodies to POST /images;
//   presigned  the server with an S3 image store (s3rver, test/helpers/s3-server.ts, in its own process);
//              the client uploads through slots, SLOT_BATCH images a request (env, default 8: POST /uploads
//              with "images", a PUT each to the store, POST /uploads/confirm), the workers GET and PUT
//              presigned URLs.
// Prints, per way: CPU ms per image of the server, of each worker, of this client (and of s3rver), end-to-end
// images/s, and the efficiency against bare sharp in two processes (bench/bare-filter.ts). Each way runs its
// images ROUNDS times (env, default 3) on one running system, each round between two bare runs (bench/paired.ts):
// the efficiency is the median of the rounds' ratios, each against the bare runs just before and after it.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { makePhotoLikeImage } from '../test/helpers/images.js';
import { parsePrometheus } from '../test/helpers/prometheus.js';
import { startS3Server, type TestS3Server } from '../test/helpers/s3-server.js';
import { makeDirs } from '../test/helpers/system.js';
import { describeRatios, median, pairedRuns, WARMUP_ROUNDS, type Paired, type Rate } from './paired.js';
import {
  CpuMeter,
  cpuMs,
  ownChildrenRunning,
  removeRunDirs,
  startSystem,
  uploadAll,
  uploadAllBySlots,
  waitDone,
  type RunningSystem,
} from './system-run.js';

type Way = 'api' | 'path' | 'presigned';

const run = promisify(execFile);
const BARE = fileURLToPath(new URL('./bare-filter.js', import.meta.url));
const BARE_ENV = withMallocTunables(process.env);
const COUNT = Number(process.env.IMAGES ?? 200);
const DISTINCT = 20; // distinct frames, cycled, as in bench/pipeline.ts
const CONCURRENCY = 4;
/** Presigned uploads: images a slot request (and its confirm) is for; 1 for a request each. */
const SLOT_BATCH = Number(process.env.SLOT_BATCH ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** How long the server's CPU is read with the workers connected and nothing to do, before the uploads. */
const IDLE_MS = 3000;
const PATH_EFFICIENCY_TARGET = 0.9;
const PRESIGNED_SERVER_TARGET_MS = 1.0;
const ways = (process.env.WAYS ?? 'api,path,presigned').split(',') as Way[];
for (const way of ways)
  if (!['api', 'path', 'presigned'].includes(way)) throw new Error(`WAYS: api, path or presigned, not ${way}`);

interface Measured {
  way: Way;
  /** The median of the rounds' images per second. */
  rate: number;
  /** CPU per image over every round, ms. */
  server: number;
  /** The server's CPU per second with the workers connected and no work (heartbeats, probes), ms. */
  serverIdlePerSecond: number;
  workers: number[];
  client: number;
  /** s3rver's CPU per image (presigned only). */
  store: number | null;
  /** GET /images/{id} answered during the rounds (warm-up included): the originals workers got through the API. */
  apiDownloads: number;
  paired: Paired;
}

const dirs = await makeDirs();
const frames: Buffer[] = [];
const files: string[] = [];
for (let index = 0; index < DISTINCT; index++) {
  frames.push(await makePhotoLikeImage(1920, 1080, index + 1));
  files.push(path.join(dirs.root, `photo-${index}.jpg`));
  await writeFile(files[index]!, frames[index]!);
}
const images = Array.from({ length: COUNT }, (_, index) => frames[index % DISTINCT]!);
const imageFiles = Array.from({ length: COUNT }, (_, index) => files[index % DISTINCT]!);
const averageKb = frames.reduce((sum, frame) => sum + frame.length, 0) / frames.length / 1024;

async function bareRun(): Promise<Rate> {
  const half = Math.ceil(COUNT / 2);
  const started = performance.now();
  const bare = await Promise.all(
    [imageFiles.slice(0, half), imageFiles.slice(half)].map((part) =>
      run(process.execPath, [BARE, 'sharp', 'blur', ...part], { env: BARE_ENV }),
    ),
  );
  const rate = COUNT / ((performance.now() - started) / 1000);
  const cpu = bare.reduce((sum, { stdout }) => sum + (JSON.parse(stdout) as { cpuMs: number }).cpuMs, 0);
  return { rate, cpuPerImage: cpu / COUNT };
}

async function apiDownloads(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parsePrometheus(text).sum('dpip_http_requests_total', { method: 'GET', route: '/images/:id' });
}

async function start(way: Way, s3: TestS3Server | null): Promise<RunningSystem> {
  const workers = { count: 2, byPath: way === 'path', slots: 1 };
  if (!s3) return startSystem('sharp', 0, { workers });
  const serverArgs = ['--image-store', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint];
  serverArgs.push('--s3-force-path-style');
  return startSystem('sharp', 0, { workers, serverArgs, env: s3.env });
}

async function measure(way: Way): Promise<Measured> {
  const s3 = way === 'presigned' ? await startS3Server({ bucket: 'dpip-bench' }) : null;
  try {
    const storePids = s3 ? await ownChildrenRunning('s3-server-child') : [];
    if (s3 && storePids.length !== 1) throw new Error(`expected one s3rver process, found ${storePids.length}`);
    const system = await start(way, s3);
    try {
      const { client } = system;
      const idleBefore = await cpuMs(system.serverPid);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const serverIdlePerSecond = ((await cpuMs(system.serverPid)) - idleBefore) / (IDLE_MS / 1000);
      const downloadsBefore = await apiDownloads(client.url);
      // the server, the workers, s3rver, and this client, summed over the counted rounds
      const meter = new CpuMeter([system.serverPid, ...system.workerPids, ...storePids]);
      const dpipProcesses = 1 + system.workerPids.length;
      const round = async (counted: boolean): Promise<Rate> => {
        const workload = await client.createWorkload({ filter: 'blur' });
        const spent = await meter.measure(counted, async () => {
          const started = performance.now();
          if (way === 'presigned')
            await uploadAllBySlots(client, workload.workload_id, images, 'image/jpeg', CONCURRENCY, SLOT_BATCH);
          else await uploadAll(client, workload.workload_id, images, 'image/jpeg', CONCURRENCY, 'raw');
          return (COUNT / ((await waitDone(client, workload.workload_id, COUNT)) - started)) * 1000;
        });
        // s3rver is not DPIP's: the round's CPU is DPIP's processes and this client
        const dpip = spent.processes.slice(0, dpipProcesses).reduce((sum, value) => sum + value, spent.client);
        return { rate: spent.value, cpuPerImage: dpip / COUNT };
      };
      const paired = await pairedRuns(ROUNDS, bareRun, round);
      const runImages = COUNT * ROUNDS;
      return {
        way,
        rate: median(paired.system.map((run) => run.rate)),
        server: meter.processes[0]! / runImages,
        serverIdlePerSecond,
        workers: meter.processes.slice(1, dpipProcesses).map((value) => value / runImages),
        client: meter.client / runImages,
        store: s3 ? meter.processes.at(-1)! / runImages : null,
        apiDownloads: (await apiDownloads(client.url)) - downloadsBefore,
        paired,
      };
    } finally {
      await system.stop();
    }
  } finally {
    await s3?.close();
  }
}

const ms = (value: number): string => value.toFixed(1);
/** Both workers' CPU per image of the run, and each one's share. */
const workersOf = (row: Measured): string =>
  `${ms(row.workers.reduce((sum, value) => sum + value, 0))} (${row.workers.map(ms).join(' + ')})`;
const WAY_NAMES: Record<Way, string> = {
  api: 'through the API',
  path: 'by path',
  presigned: 'presigned (s3rver)',
};

function report(row: Measured): void {
  const name = row.way.padEnd(9);
  const rates = (runs: Rate[]): string => runs.map((run) => run.rate.toFixed(1)).join(', ');
  const efficiency = median(row.paired.ratios);
  console.log(
    `  ${name} CPU ms per image: server ${row.server.toFixed(2)} (idle: ${ms(row.serverIdlePerSecond)} ms/s), ` +
      `workers ${workersOf(row)}, this client ${ms(row.client)}` +
      (row.store === null ? '' : `, s3rver ${ms(row.store)}`) +
      `; originals through GET /images/{id}: ${row.apiDownloads} of ${COUNT * (ROUNDS + WARMUP_ROUNDS)}`,
  );
  console.log(
    `  ${name} bare img/s, in order: ${rates(row.paired.bare)}; the system's between them: ${rates(row.paired.system)}`,
  );
  let target = '';
  if (row.way === 'path') target = ` (target >= ${PATH_EFFICIENCY_TARGET}: ${efficiency >= 0.9 ? 'met' : 'not met'})`;
  if (row.way === 'presigned')
    target =
      ` (bounded by s3rver's ${ms(row.store!)} ms per image on the same cores); server CPU per image ` +
      `${row.server.toFixed(2)} ms (target <= ${PRESIGNED_SERVER_TARGET_MS}: ` +
      `${row.server <= PRESIGNED_SERVER_TARGET_MS ? 'met' : 'not met'})`;
  console.log(
    `  ${name} system ${row.rate.toFixed(2)} img/s end to end (median): ` +
      `efficiency ${describeRatios(row.paired.ratios)}${target}`,
  );
  console.log(`  ${name} CPU efficiency (DPIP's processes against bare): ${describeRatios(row.paired.cpuRatios)}`);
}

console.log(
  `byte paths: ${COUNT} photo-like 1920x1080 JPEGs (${averageKb.toFixed(0)} KB on average), filter blur, sharp, ` +
    `two dpip-worker processes (one slot each) vs two bare processes, all with the malloc tunables; ` +
    `${CONCURRENCY} uploads in flight; ${ROUNDS} rounds per way, each between two bare runs, ` +
    `after ${WARMUP_ROUNDS} not counted`,
);
const rows: Measured[] = [];
for (const way of ways) {
  console.log(`${WAY_NAMES[way]} (load average ${loadavg()[0]!.toFixed(2)} before it):`);
  const row = await measure(way);
  report(row);
  rows.push(row);
}
console.log(
  '\n| way | server CPU ms/image | workers CPU ms/image | client | s3rver | img/s | bare img/s | efficiency |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(
    `| ${row.way} | ${row.server.toFixed(2)} | ${workersOf(row)} | ${ms(row.client)} | ` +
      `${row.store === null ? '-' : ms(row.store)} | ${row.rate.toFixed(1)} | ` +
      `${median(row.paired.bare.map((run) => run.rate)).toFixed(1)} | ${describeRatios(row.paired.ratios)} |`,
  );
}
await removeRunDirs();
await dirs.remove();
