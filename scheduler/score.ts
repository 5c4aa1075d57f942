import { missing, type JobNeeds, type WorkerCandidate } from '../controller/index.js';

export const SCORE_WEIGHTS = { cpu: 0.4, memory: 0.3, slots: 0.2, gpu: 0.1 } as const;

/** GPU memory free from which a GPU counts as having room (MB); less counts in proportion. */
export const GPU_ROOM_MB = 512;

/** What the score reads of a worker. */
export type Scored = Pick<WorkerCandidate, 'slots' | 'resources'>;

/**
 * How free the worker's GPU is, 0..1: none is 0; otherwise its idle share (1 - utilization) times its room
 * (free memory up to GPU_ROOM_MB). What the GPU does not report (older workers send neither) counts as free.
 */
export function gpuFree(gpu: Scored['resources']['gpu']): number {
  if (!gpu.present) return 0;
  const idle = 1 - Math.min(100, Math.max(0, gpu.utilization ?? 0)) / 100;
  const room = gpu.memory_free_mb === undefined ? 1 : Math.min(1, Math.max(0, gpu.memory_free_mb) / GPU_ROOM_MB);
  return idle * room;
}

/**
 * How good a worker is for the next job, 0..1, higher is better:
 *   0.4 * free CPU + 0.3 * free memory + 0.2 * free slots + 0.1 * free GPU
 * Free slots fall as jobs are placed in one pass, which spreads a burst across workers
 * even though CPU and memory readings only move with the next heartbeat.
 */
export function scoreWorker(worker: Scored, freeSlots: number): number {
  const { resources, slots } = worker;
  const cpuFree = 1 - Math.min(100, Math.max(0, resources.cpu_load)) / 100;
  // clamped like the CPU load: a report of more free memory than there is must not outscore the truth
  const memoryFree = resources.mem_total > 0 ? Math.min(1, Math.max(0, resources.mem_free / resources.mem_total)) : 0;
  const slotsFree = slots > 0 ? freeSlots / slots : 0;
  return (
    SCORE_WEIGHTS.cpu * cpuFree +
    SCORE_WEIGHTS.memory * memoryFree +
    SCORE_WEIGHTS.slots * slotsFree +
    SCORE_WEIGHTS.gpu * gpuFree(resources.gpu)
  );
}

/** A worker can take a workload's job when its tags cover the workload's and it can do every step of its chain. */
export function canRun(
  worker: Pick<WorkerCandidate, 'chains' | 'operations' | 'formats' | 'tags'>,
  needs: JobNeeds,
): boolean {
  return missing(worker, needs) === null;
}
