import type { Resources } from '../../common/protocol.js';
import type { LiveWorker, ResourceSample, WorkerState } from './registry.js';

/** A worker as the dashboard and operators see it: no token, no bus address. */
export interface WorkerView {
  worker_id: string;
  name: string;
  tags: string[];
  state: WorkerState;
  engine: string;
  filters: string[];
  slots: number;
  running_jobs: number;
  free_slots: number;
  cpu_load: number; // percent
  cores: number;
  mem_used: number; // fraction 0..1
  mem_total: number; // bytes
  gpu: Resources['gpu'];
  last_seen: string;
  registered_at: string;
  /** Resource samples, oldest first: t (epoch ms), cpu_load (percent), mem_used (fraction). */
  history: ResourceSample[];
}

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
    history: historyLimit >= worker.history.length ? [...worker.history] : worker.history.slice(worker.history.length - historyLimit),
  };
}
