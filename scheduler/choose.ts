import type { JobNeeds, ReadyJob, WorkerCandidate } from '../controller/index.js';
import { canRun, scoreWorker } from './score.js';

/**
 * The eligible worker with the highest score for this job, given the slots each still has free in
 * this pass; null when none can run it. Ties go to the worker listed first.
 */
export function chooseWorker(
  free: ReadonlyMap<WorkerCandidate, number>,
  job: Pick<ReadyJob, 'needs'>,
): WorkerCandidate | null {
  let best: WorkerCandidate | null = null;
  let bestScore = -1;
  for (const [worker, slots] of free) {
    if (slots <= 0 || !canRun(worker, job.needs)) continue;
    const score = scoreWorker(worker, slots);
    if (score > bestScore) {
      best = worker;
      bestScore = score;
    }
  }
  return best;
}

/** Whether any worker with a slot still free in this pass can run jobs with these needs. */
export function anyCanRun(free: ReadonlyMap<WorkerCandidate, number>, needs: JobNeeds): boolean {
  for (const [worker, slots] of free) if (slots > 0 && canRun(worker, needs)) return true;
  return false;
}
