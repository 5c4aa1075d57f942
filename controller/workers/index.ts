export { WorkerRegistry, HISTORY_LENGTH, type LiveWorker, type WorkerState, type ResourceSample } from './registry.js';
export { viewWorker, type WorkerView } from './view.js';
