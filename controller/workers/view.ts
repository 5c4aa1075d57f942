import type { Resources } from '../../common/protocol.js';
import type {
  ResourceSample,
  WorkerActivityCounts,
  WorkerActivityView,
  WorkerDetailView,
  WorkerView,
} from '../../common/views.js';
import type { WorkerActivity, WorkerRecord } from '../store/index.js';
import type { FullHistory } from './history.js';
import { memoryUsed } from './history.js';
import type { WorkerState } from './registry.js';

export type { WorkerView, WorkerDetailView } from '../../common/views.js';

/** What a view shows of a worker: the registry's live entry, or what the store kept of one it no longer holds. */
export interface WorkerFacts {
  record: WorkerRecord;
  state: WorkerState;
  last_seen: number;
  resources: Resources;
  /** What a live worker takes beyond its slots; absent for one known only from its record. */
  prefetch?: number;
}

const NO_REPORT: Resources = { cpu_load: 0, cores: 1, mem_free: 0, mem_total: 0, gpu: { present: false } };

/**
 * A worker the registry does not hold (it left, or has not come back since a server restart), from its
 * record and its activity's last heartbeat.
 */
export function storedWorker(record: WorkerRecord, activity: WorkerActivity | null): WorkerFacts {
  return {
    record,
    state: record.left_at ? 'left' : 'dead',
    last_seen: activity?.last_seen ?? Date.parse(record.registered_at),
    resources: activity?.resources ?? NO_REPORT,
  };
}

export function activityCounts(activity: WorkerActivity | null): WorkerActivityCounts {
  return {
    registrations: activity?.registrations ?? 0,
    deaths: activity?.deaths ?? 0,
    jobs_done: activity?.jobs_done ?? 0,
    jobs_failed: activity?.jobs_failed ?? 0,
    jobs_requeued: activity?.jobs_requeued ?? 0,
    bytes_in: activity?.bytes_in ?? 0,
    bytes_out: activity?.bytes_out ?? 0,
  };
}

function activityView(activity: WorkerActivity | null): WorkerActivityView {
  return {
    ...activityCounts(activity),
    registered: [...(activity?.registered ?? [])],
    left_at: activity?.left_at ?? null,
    died: (activity?.died ?? []).map((death) => ({ ...death })),
  };
}

/** `running` is how many jobs the worker holds; `history` its newest samples. */
export function viewWorker(
  worker: WorkerFacts,
  running: number,
  history: ResourceSample[],
  activity: WorkerActivity | null,
): WorkerView {
  const { record, resources } = worker;
  return {
    worker_id: record.id,
    name: record.name,
    tags: record.tags,
    state: worker.state,
    engine: record.engine,
    filters: record.filters,
    slots: record.slots,
    prefetch: worker.state === 'alive' ? (worker.prefetch ?? 0) : 0,
    running_jobs: running,
    free_slots: worker.state === 'alive' ? Math.max(0, record.slots - running) : 0,
    cpu_load: resources.cpu_load,
    cores: resources.cores,
    mem_used: memoryUsed(resources),
    mem_total: resources.mem_total,
    gpu: resources.gpu,
    last_seen: new Date(worker.last_seen).toISOString(),
    registered_at: record.registered_at,
    history,
    activity: activityCounts(activity),
  };
}

/** GET /workers/{id}: the last hour at heartbeat resolution, the week before by the minute, the whole activity. */
export function viewWorkerDetail(
  worker: WorkerFacts,
  running: number,
  history: FullHistory,
  activity: WorkerActivity | null,
): WorkerDetailView {
  const { activity: _counts, ...view } = viewWorker(worker, running, history.samples, activity);
  return { ...view, history_by_minute: history.minutes, activity: activityView(activity) };
}
