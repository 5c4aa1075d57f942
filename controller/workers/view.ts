import type { WorkerView } from '../../common/views.js';
import type { LiveWorker } from './registry.js';

export type { WorkerView } from '../../common/views.js';

/** `running` is how many jobs the worker holds; `historyLimit` keeps only the newest samples. */
export function viewWorker(worker: LiveWorker, running: number, historyLimit = Infinity): WorkerView {
  const { record, resources } = worker;
  return {
    worker_id: record.id,
    name: record.name,
    tags: record.tags,
    state: worker.state,
    engine: record.engine,
    filters: record.filters,
    slots: record.slots,
    running_jobs: running,
    free_slots: worker.state === 'alive' ? Math.max(0, record.slots - running) : 0,
    cpu_load: resources.cpu_load,
    cores: resources.cores,
    mem_used: 1 - resources.mem_free / resources.mem_total,
    mem_total: resources.mem_total,
    gpu: resources.gpu,
    last_seen: new Date(worker.last_seen).toISOString(),
    registered_at: record.registered_at,
    history:
      historyLimit >= worker.history.length
        ? [...worker.history]
        : worker.history.slice(worker.history.length - historyLimit),
  };
}
