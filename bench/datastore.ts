// Per-image cost of the controller's bookkeeping over a long history: 10,000 images go through the
// real controller (original stored, job queued, leased, started, filtered image stored, completed),
// every step committed to the datastore as in production. Prints the cost per window of 1,000 images
// and the memory, so growth with history would show as a rising column. Env DATASTORE=postgres: the records in
// a throwaway PostgreSQL (test/helpers/postgres.ts); PRELOAD=N first writes N finished images (an original, its
// result and its job each) straight into the database, so the run measures the cost with N behind it, and the
// time the controller takes to open (read) them.
import pg from 'pg';
import { createLogger } from '../common/log.js';
import { migrate } from '../controller/store/postgres/migrate.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { startController, createWorkload, viewWorkload, type IncomingImage } from '../controller/index.js';
import { makeDirs, testServerConfig } from '../test/helpers/system.js';
import { makeTestImage } from '../test/helpers/images.js';

const TOTAL = Number(process.env.IMAGES ?? 10_000);
const WINDOW = 1000;

const DATASTORE = process.env.DATASTORE === 'postgres' ? 'postgres' : 'lowdb';
const PRELOAD = Number(process.env.PRELOAD ?? 0);

/** N finished images of one workload, written by SQL: far quicker than through the controller. */
async function preload(url: string, count: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    await migrate(pool);
    await pool.query(
      "INSERT INTO workloads (id, owner, name, filter, tags, created_at) VALUES ('preload', 'bench', 'preload', " +
        "'grayscale', '{}', now())",
    );
    const image = (prefix: string, type: string, source: string, job: string, seq: string): string =>
      'INSERT INTO images (id, workload_id, owner, type, source_image_id, job_id, file, mime, bytes, width, height, ' +
      `created_at, seq) SELECT '${prefix}-' || i, 'preload', 'bench', '${type}', ${source}, ${job}, ` +
      `'preload/${prefix}-' || i || '.png', 'image/png', 1234, 64, 64, now(), ${seq} FROM generate_series(1, $1) i`;
    await pool.query(image('o', 'original', 'NULL', "'j-' || i", '2 * i - 1'), [count]);
    await pool.query(image('f', 'filtered', "'o-' || i", 'NULL', '2 * i'), [count]);
    await pool.query(
      'INSERT INTO jobs (id, workload_id, image_id, state, attempts, not_before, filtered_image_id, created_at, ' +
        "updated_at, started_at, finished_at) SELECT 'j-' || i, 'preload', 'o-' || i, 'done', 1, now(), 'f-' || i, " +
        'now(), now(), now(), now() FROM generate_series(1, $1) i',
      [count],
    );
    await pool.query('VACUUM ANALYZE');
  } finally {
    await pool.end();
  }
}

const dirs = await makeDirs();
const config = await testServerConfig(dirs);
let postgres: TestPostgres | null = null;
if (DATASTORE === 'postgres') {
  postgres = await startPostgres();
  const url = await postgres.createDatabase();
  if (PRELOAD > 0) {
    const started = performance.now();
    await preload(url, PRELOAD);
    console.log(`preloaded ${PRELOAD} finished images in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  config.controller.datastore = { kind: 'postgres', url };
}
const opening = performance.now();
const controller = await startController(config.controller, createLogger('bench', 'silent'));
console.log(
  `${DATASTORE}: the controller opened in ${((performance.now() - opening) / 1000).toFixed(1)} s, ` +
    `RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
);
const workload = createWorkload(controller.store, 'bench', 'bench', 'grayscale', []);
await controller.store.commit();
const png = await makeTestImage(64, 64, 'image/png', 1);
/** A small upload as the API hands it over: in memory. */
async function staged(): Promise<IncomingImage> {
  return { content: { kind: 'memory', data: png }, bytes: png.length, mime: 'image/png', width: 64, height: 64 };
}
const worker = 'bench-worker';

console.log(`datastore: ${TOTAL} images through the controller, windows of ${WINDOW}`);
console.log('images    ms/image   cpu ms/image   rss MB   heap MB   journal KB   snapshots');
let windowStart = performance.now();
let cpuStart = process.cpuUsage();
const firstAndLast: number[] = [];
for (let index = 1; index <= TOTAL; index++) {
  const original = await controller.images.addOriginal(workload, await staged());
  const jobId = original.job_id!;
  const assigned = controller.jobs.assign(jobId, worker);
  const leaseId = assigned.ok ? assigned.job.lease?.lease_id : undefined;
  if (!leaseId) throw new Error(`job ${jobId} could not be assigned`);
  controller.jobs.start(jobId, worker, leaseId);
  await controller.store.commit();
  await controller.images.addFiltered({ type: 'filtered', job_id: jobId, lease_id: leaseId }, worker, await staged());
  if (index % WINDOW === 0) {
    const elapsed = (performance.now() - windowStart) / WINDOW;
    const cpu = process.cpuUsage(cpuStart);
    const memory = process.memoryUsage();
    const stats = controller.store.stats();
    firstAndLast.push(elapsed);
    console.log(
      `${String(index).padStart(6)}    ${elapsed.toFixed(3).padStart(8)}   ` +
        `${((cpu.user + cpu.system) / 1000 / WINDOW).toFixed(3).padStart(12)}   ` +
        `${(memory.rss / 2 ** 20).toFixed(0).padStart(6)}   ${(memory.heapUsed / 2 ** 20).toFixed(0).padStart(7)}   ` +
        `${(stats.journalBytes / 1024).toFixed(0).padStart(10)}   ${String(stats.snapshots).padStart(9)}`,
    );
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
  }
}
const view = viewWorkload(controller, workload);
if (view.filtered_images.length !== TOTAL)
  throw new Error(`expected ${TOTAL} filtered images, got ${view.filtered_images.length}`);
console.log(`last window / first window: ${(firstAndLast.at(-1)! / firstAndLast[0]!).toFixed(2)}x`);
await controller.close();
await postgres?.stop();
await dirs.remove();
