import type { ReadyJob, SchedulingPort, WorkerCandidate } from '../controller/index.js';
import { anyCanRun, chooseWorker } from './choose.js';

/** A job leased to a worker in a pass, to be sent to it. */
export interface Placement {
  worker: WorkerCandidate;
  job: ReadyJob;
  lease_id: string;
}

/**
 * One placement pass: the ready jobs, oldest upload first, each leased to the eligible candidate with
 * the highest score, whose free slots then fall by one; it ends when no free slot is left. The port
 * yields only jobs of groups (filter and tags) that some candidate with a free slot can run, asking
 * again as slots are taken, so a queue that no worker can take is skipped whole instead of walked. The
 * placements are the same as a walk over every ready job would make: a job no free worker can run is
 * skipped either way, and free slots only fall during a pass.
 */
export function placeJobs(port: Pick<SchedulingPort, 'candidates' | 'ready' | 'assign'>, now: number): Placement[] {
  const free = new Map<WorkerCandidate, number>();
  for (const worker of port.candidates(now)) free.set(worker, worker.free_slots);
  const placements: Placement[] = [];
  if (free.size === 0) return placements;
  for (const job of port.ready(now, (needs) => anyCanRun(free, needs))) {
    const best = chooseWorker(free, job);
    if (!best) continue; // the port asked just before: only a port that ignores the answer gets here
    const lease = port.assign(job.job_id, best.id);
    if (!lease.ok) continue;
    placements.push({ worker: best, job, lease_id: lease.lease_id });
    const left = (free.get(best) ?? 1) - 1;
    if (left > 0) free.set(best, left);
    else free.delete(best);
    if (free.size === 0) break;
  }
  return placements;
}
