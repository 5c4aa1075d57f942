import type { Resources } from '../../common/protocol.js';
import type { ResourceSample } from '../../common/views.js';
import type { WorkerRecord } from '../store/index.js';

export type WorkerState = 'alive' | 'dead' | 'left';

export type { ResourceSample } from '../../common/views.js';

/** What the controller knows of a worker right now; only the WorkerRecord part is persisted. */
export interface LiveWorker {
  record: WorkerRecord;
  /** The worker's token: it authenticates the worker's calls, and the scheduler's calls to the worker. */
  token: string;
  state: WorkerState;
  last_seen: number;
  /** The worker declined or could not be reached: no assignments before this time (epoch ms). */
  resting_until: number;
  resources: Resources;
  history: ResourceSample[];
}

export const HISTORY_LENGTH = 300;

export class WorkerRegistry {
  private readonly workers = new Map<string, LiveWorker>();

  add(record: WorkerRecord, token: string, resources: Resources, now: number): LiveWorker {
    const live: LiveWorker = {
      record,
      token,
      state: 'alive',
      last_seen: now,
      resting_until: 0,
      resources,
      history: [],
    };
    this.workers.set(record.id, live);
    this.sample(live, resources, now);
    return live;
  }

  get(id: string): LiveWorker | undefined {
    return this.workers.get(id);
  }

  byName(name: string): LiveWorker | undefined {
    for (const worker of this.workers.values())
      if (worker.record.name === name && worker.state !== 'left') return worker;
    return undefined;
  }

  all(): LiveWorker[] {
    return [...this.workers.values()];
  }

  alive(): LiveWorker[] {
    return this.all().filter((worker) => worker.state === 'alive');
  }

  heard(worker: LiveWorker, resources: Resources, now: number): void {
    worker.last_seen = now;
    worker.state = 'alive';
    worker.resources = resources;
    this.sample(worker, resources, now);
  }

  /**
   * Workers silent for longer than the lease are dead; returns those that just died. `graceMs(since)` is
   * silence that does not count (the controller's own stalls since the worker was last heard).
   */
  markSilentDead(leaseMs: number, now: number, graceMs: (since: number) => number = () => 0): LiveWorker[] {
    const died: LiveWorker[] = [];
    for (const worker of this.workers.values()) {
      if (worker.state === 'alive' && now - worker.last_seen > leaseMs + graceMs(worker.last_seen)) {
        worker.state = 'dead';
        died.push(worker);
      }
    }
    return died;
  }

  /** The worker declined or could not be reached: no assignments for it before `until` (epoch ms). */
  rest(id: string, until: number): void {
    const worker = this.workers.get(id);
    if (worker) worker.resting_until = until;
  }

  remove(id: string): void {
    this.workers.delete(id);
  }

  private sample(worker: LiveWorker, resources: Resources, now: number): void {
    worker.history.push({
      t: now,
      cpu_load: resources.cpu_load,
      mem_used: 1 - resources.mem_free / resources.mem_total,
    });
    if (worker.history.length > HISTORY_LENGTH) worker.history.splice(0, worker.history.length - HISTORY_LENGTH);
  }
}
