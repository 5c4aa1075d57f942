export { startScheduler, type Scheduler, type SchedulerConfig } from './scheduler.js';
export { scoreWorker, canRun, SCORE_WEIGHTS } from './score.js';
export { chooseWorker } from './choose.js';
