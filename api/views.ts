import { viewWorker, type Controller, type WorkerView } from '../controller/index.js';

/**
 * The workers the registry knows (alive, or silent and taken for dead), by name, with their newest
 * `historyLimit` samples.
 */
export function workerViews(controller: Controller, historyLimit = Infinity): WorkerView[] {
  return controller.workers
    .all()
    .map((worker) => viewWorker(worker, controller.jobs.heldBy(worker.record.id).size, historyLimit))
    .sort((a, b) => a.name.localeCompare(b.name));
}
