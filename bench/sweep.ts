// The cost of one lease sweep (liveness of the workers, stalled-job release, commit) against the number
// of finished jobs in the datastore. The sweep runs every 250 ms, so its cost is paid four times a
// second for as long as the server runs. Finished jobs are put straight into the datastore (a sweep
// cannot tell them from jobs that went through the workers: they hold no lease); 16 running jobs hold
// live leases, as on a busy cluster of 8 two-slot workers. Printed beside it: a walk over every job,
// which is what the sweep did before it walked only the jobs that hold a lease.
import { createLogger } from '../common/log.js';
import type { Resources } from '../common/protocol.js';
import { startController, createWorkload, type Job } from '../controller/index.js';
import { makeDirs, testServerConfig } from '../test/helpers/system.js';

const SIZES = (process.env.SWEEP_JOBS ?? '10000,100000,1000000').split(',').map(Number);
const SWEEPS = Number(process.env.SWEEPS ?? 1000);
const WORKERS = 8;
const SLOTS = 2;

const dirs = await makeDirs();
const config = await testServerConfig(dirs, { leaseMs: 60_000, heartbeatMs: 1000 });
const controller = await startController(config.controller, createLogger('bench', 'silent'));
controller.sweeper.stop(); // the bench runs the sweeps itself
const workload = createWorkload(controller.store, 'bench', 'bench', 'grayscale', []);
const resources: Resources = { cpu_load: 10, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } };

const now = Date.now();
for (let index = 0; index < WORKERS; index++) {
  const id = `worker-${index}`;
  const record = {
    id,
    name: id,
    instance_id: id,
    tags: [],
    rpc_address: 'tcp://127.0.0.1:1',
    slots: SLOTS,
    engine: 'sharp' as const,
    filters: ['grayscale'],
    registered_at: new Date(now).toISOString(),
    left_at: null,
  };
  controller.workers.add(record, 'token', resources, now);
  for (let slot = 0; slot < SLOTS; slot++) {
    const job = controller.jobs.create(workload.id, `original-${index}-${slot}`);
    const assigned = controller.jobs.assign(job.id, id);
    const leaseId = assigned.ok ? assigned.job.lease?.lease_id : undefined;
    if (!leaseId) throw new Error('could not lease a job');
    controller.jobs.start(job.id, id, leaseId);
  }
}
await controller.store.commit();

function finishedJob(index: number): Job {
  const at = new Date(now - 3_600_000).toISOString();
  return {
    id: `done-${index}`,
    workload_id: workload.id,
    image_id: `image-${index}`,
    state: 'done',
    attempts: 1,
    lease: null,
    not_before: 0,
    error: null,
    filtered_image_id: `filtered-${index}`,
    created_at: at,
    updated_at: at,
    started_at: at,
    finished_at: at,
  };
}

/** The old sweep's walk: every job, to find the leases that expired. */
function walkEveryJob(at: number): number {
  let expired = 0;
  for (const job of Object.values(controller.store.data.jobs)) if (job.lease && job.lease.expires_at <= at) expired++;
  return expired;
}

async function timeSweeps(sweep: () => unknown, rounds: number): Promise<number> {
  for (let warm = 0; warm < Math.min(5, rounds); warm++) sweep();
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    sweep();
    await controller.store.commit();
  }
  return (performance.now() - started) / rounds;
}

console.log(`lease sweep: ${WORKERS} workers, ${WORKERS * SLOTS} leased jobs, ${SWEEPS} sweeps per size`);
console.log('finished jobs   ms per sweep   walk of every job ms   ratio   rss MB');
let filled = 0;
for (const size of SIZES) {
  for (; filled < size; filled++) {
    const job = finishedJob(filled);
    controller.store.data.jobs[job.id] = job;
  }
  const sweepMs = await timeSweeps(() => controller.sweeper.sweep(Date.now()), SWEEPS);
  // the walk costs about a microsecond per job: fewer rounds of it at the larger sizes
  const walkMs = await timeSweeps(() => walkEveryJob(Date.now()), Math.max(3, Math.round((SWEEPS * 10_000) / size)));
  const rss = Math.round(process.memoryUsage().rss / 1048576);
  console.log(
    `${String(size).padStart(13)}   ${sweepMs.toFixed(4).padStart(12)}   ${walkMs.toFixed(3).padStart(20)}   ` +
      `${(walkMs / sweepMs).toFixed(0).padStart(5)}x   ${String(rss).padStart(6)}`,
  );
}
if (controller.jobs.leasedCount() !== WORKERS * SLOTS) throw new Error('a live lease was released by the sweep');
// the finished jobs were never journaled: close without writing them
await controller.close();
await dirs.remove();
