import {
  own,
  RECENT_SAMPLES,
  storedWorker,
  viewWorker,
  viewWorkerDetail,
  type Controller,
  type WorkerDetailView,
  type WorkerView,
} from '../controller/index.js';

/**
 * The workers the registry knows (alive, or silent and taken for dead), by name, with their newest
 * `historyLimit` samples and their activity counts.
 */
export function workerViews(controller: Controller, historyLimit = RECENT_SAMPLES): WorkerView[] {
  const now = Date.now();
  return controller.workers
    .all()
    .map((worker) => {
      const id = worker.record.id;
      const history = controller.history.recent(id, historyLimit, now);
      return viewWorker(worker, controller.jobs.heldBy(id).size, history, controller.activity.view(id));
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Any worker the datastore has a record of, live or not (one that left, one not back since a restart),
 * with its whole kept history and activity; null for an unknown id.
 */
export function workerDetail(controller: Controller, id: string): WorkerDetailView | null {
  const record = own(controller.store.data.workers, id);
  if (!record) return null;
  const activity = controller.activity.view(id);
  const worker = controller.workers.get(id) ?? storedWorker(record, activity);
  const history = controller.history.full(id, Date.now());
  return viewWorkerDetail(worker, controller.jobs.heldBy(id).size, history, activity);
}
