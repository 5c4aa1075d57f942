export { startScheduler, type Scheduler, type SchedulerConfig } from './scheduler.js';
export { scoreWorker, canRun, gpuFree, GPU_ROOM_MB, SCORE_WEIGHTS } from './score.js';
export { chooseWorker, anyCanRun } from './choose.js';
export { placeJobs, type Placement } from './pass.js';
