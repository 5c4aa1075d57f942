export { WorkerRegistry, type LiveWorker, type WorkerState, type WorkerEvents } from './registry.js';
export {
  WorkerHistory,
  RECENT_SAMPLES,
  FULL_RESOLUTION_MS,
  KEPT_MS,
  MIN_SAMPLE_GAP_MS,
  type FullHistory,
} from './history.js';
export { WorkerActivityBook, ACTIVITY_WRITE_MS } from './activity.js';
export {
  viewWorker,
  viewWorkerDetail,
  storedWorker,
  type WorkerFacts,
  type WorkerView,
  type WorkerDetailView,
} from './view.js';
export type { ResourceSample } from '../../common/views.js';
