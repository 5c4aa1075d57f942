// Per-image cost of the controller's bookkeeping over a long history: 10,000 images go through the
// real controller (original stored, job queued, leased, started, filtered image stored, completed),
// every step committed to the datastore as in production. Prints the cost per window of 1,000 images
// and the memory, so growth with history would show as a rising column.
import { createLogger } from '../common/log.js';
import { startController, createWorkload, viewWorkload, type IncomingImage } from '../controller/index.js';
import { makeDirs, testServerConfig } from '../test/helpers/system.js';
import { makeTestImage } from '../test/helpers/images.js';

const TOTAL = Number(process.env.IMAGES ?? 10_000);
const WINDOW = 1000;

const dirs = await makeDirs();
const config = await testServerConfig(dirs);
const controller = await startController(config.controller, createLogger('bench', 'silent'));
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
await dirs.remove();
