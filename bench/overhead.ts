// Overhead per job and scale: tiny (64x64) images through the whole system, so nearly all cost is
// the system's own. Prints server CPU ms per image, jobs/s end to end and server RSS, for each count
// given (default: the overhead run of 2,000; `npm run bench:scale` runs 100, 1,000 and 10,000). Env
// DATASTORE=postgres: the server keeps its records in a throwaway PostgreSQL (test/helpers/postgres.ts), a fresh
// database per run, and the CPU of PostgreSQL's processes is printed beside the server's.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { makeTestImage } from '../test/helpers/images.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import {
  cpuSplitMs,
  describeUploadForm,
  removeRunDirs,
  rssMb,
  startSystem,
  uploadAll,
  uploadForm,
  waitDone,
} from './system-run.js';

const CPU_TARGET_MS = 2;
const counts = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
if (counts.length === 0) counts.push(2000);

const tiny: Buffer[] = [];
for (let seed = 1; seed <= 16; seed++) tiny.push(await makeTestImage(64, 64, 'image/png', seed));

const DATASTORE = process.env.DATASTORE === 'postgres' ? 'postgres' : 'lowdb';
const postgres: TestPostgres | null = DATASTORE === 'postgres' ? await startPostgres() : null;
const run = promisify(execFile);

/** CPU ms of every process of the postgres user (the throwaway cluster's postmaster and backends). */
async function postgresCpuMs(): Promise<number> {
  const { stdout } = await run('pgrep', ['-u', 'postgres']).catch(() => ({ stdout: '' }));
  const pids = stdout.split('\n').filter(Boolean).map(Number);
  const each = await Promise.all(pids.map((pid) => cpuSplitMs(pid).catch(() => ({ user: 0, kernel: 0 }))));
  return each.reduce((sum, { user, kernel }) => sum + user + kernel, 0);
}

interface Row {
  count: number;
  /** PostgreSQL's CPU per image (DATASTORE=postgres), ms. */
  postgresPerImage: number | null;
  cpuPerImage: number;
  kernelPerImage: number;
  fileCreationMicros: number;
  jobsPerSecond: number;
  rss: number;
}

// this shared machine's speed drifts by 10-30% within minutes: the overhead run is repeated (env
// ROUNDS, default 3 for a single count, 1 for the scale runs) and its median reported
const rounds = Number(process.env.ROUNDS ?? (counts.length === 1 ? 3 : 1));

async function measure(count: number): Promise<Row> {
  const serverArgs = postgres ? ['--datastore', await postgres.createDatabase()] : [];
  const system = await startSystem('sharp', 2, { serverArgs });
  try {
    const images = Array.from({ length: count }, (_, index) => tiny[index % tiny.length]!);
    const workload = await system.client.createWorkload();
    const cpuBefore = await cpuSplitMs(system.serverPid);
    const postgresBefore = postgres ? await postgresCpuMs() : 0;
    const started = performance.now();
    await uploadAll(system.client, workload.workload_id, images, 'image/png', 8, form);
    const finished = await waitDone(system.client, workload.workload_id, count);
    const cpuAfter = await cpuSplitMs(system.serverPid);
    const postgresSpent = postgres ? (await postgresCpuMs()) - postgresBefore : null;
    const kernel = cpuAfter.kernel - cpuBefore.kernel;
    const cpu = cpuAfter.user - cpuBefore.user + kernel;
    return {
      count,
      postgresPerImage: postgresSpent === null ? null : postgresSpent / count,
      cpuPerImage: cpu / count,
      kernelPerImage: kernel / count,
      fileCreationMicros: system.fileCreationMicros,
      jobsPerSecond: count / ((finished - started) / 1000),
      rss: await rssMb(system.serverPid),
    };
  } finally {
    await system.stop();
  }
}

function describe(row: Row): string {
  return (
    `server ${row.cpuPerImage.toFixed(2)} CPU ms/image ` +
    `(${(row.cpuPerImage / CPU_TARGET_MS).toFixed(2)}x the ${CPU_TARGET_MS} ms target; ` +
    `${row.kernelPerImage.toFixed(2)} of it in the kernel), ` +
    (row.postgresPerImage === null ? '' : `PostgreSQL ${row.postgresPerImage.toFixed(2)} CPU ms/image, `) +
    `${row.jobsPerSecond.toFixed(0)} jobs/s end to end, server RSS ${row.rss.toFixed(0)} MB ` +
    `(a file creation cost ${(row.fileCreationMicros / 1000).toFixed(3)} ms of kernel time just before)`
  );
}

const form = uploadForm();
console.log(`${describeUploadForm(form)}; datastore: ${DATASTORE}`);
const rows: Row[] = [];
for (const count of counts) {
  const runs: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    runs.push(await measure(count));
    if (rounds > 1) console.log(`${String(count).padStart(6)} images, round ${round}: ${describe(runs.at(-1)!)}`);
  }
  const median = [...runs].sort((a, b) => a.cpuPerImage - b.cpuPerImage)[Math.floor((runs.length - 1) / 2)]!;
  rows.push(median);
  console.log(`${String(count).padStart(6)} images${rounds > 1 ? ` (median of ${rounds})` : ''}: ${describe(median)}`);
}
await removeRunDirs();
await postgres?.stop();
if (rows.length > 1) {
  const first = rows[0]!;
  const last = rows.at(-1)!;
  console.log(
    `scale: cost at ${last.count} / cost at ${first.count} = ${(last.cpuPerImage / first.cpuPerImage).toFixed(2)}x ` +
      `(target <= 1.25); server RSS at ${last.count}: ${last.rss.toFixed(0)} MB (target < 250)`,
  );
}
