import type { WorkerCandidate } from '../controller/index.js';

export const SCORE_WEIGHTS = { cpu: 0.4, memory: 0.3, slots: 0.2, gpu: 0.1 } as const;

/** What the score reads of a worker. */
export type Scored = Pick<WorkerCandidate, 'slots' | 'resources'>;

/**
 * How good a worker is for the next job, 0..1, higher is better:
 *   0.4 * free CPU + 0.3 * free memory + 0.2 * free slots + 0.1 * GPU available
 * Free slots fall as jobs are placed in one pass, which spreads a burst across workers
 * even though CPU and memory readings only move with the next heartbeat.
 */
export function scoreWorker(worker: Scored, freeSlots: number): number {
  const { resources, slots } = worker;
  const cpuFree = 1 - Math.min(100, Math.max(0, resources.cpu_load)) / 100;
  // clamped like the CPU load: a report of more free memory than there is must not outscore the truth
  const memoryFree = resources.mem_total > 0 ? Math.min(1, Math.max(0, resources.mem_free / resources.mem_total)) : 0;
  const slotsFree = slots > 0 ? freeSlots / slots : 0;
  const gpu = resources.gpu.present && (resources.gpu.memory_free_mb ?? 1) > 0 ? 1 : 0;
  return (
    SCORE_WEIGHTS.cpu * cpuFree +
    SCORE_WEIGHTS.memory * memoryFree +
    SCORE_WEIGHTS.slots * slotsFree +
    SCORE_WEIGHTS.gpu * gpu
  );
}

/** A worker can take a workload's job when its tags cover the workload's and it has the filter. */
export function canRun(
  worker: Pick<WorkerCandidate, 'filters' | 'tags'>,
  filter: string,
  requiredTags: readonly string[],
): boolean {
  return worker.filters.includes(filter) && requiredTags.every((tag) => worker.tags.includes(tag));
}
