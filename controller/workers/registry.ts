import type { Resources } from '../../common/protocol.js';
import type { WorkerRecord } from '../store/index.js';

export type WorkerState = 'alive' | 'dead' | 'left';

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
  /** It proved it sees the server's images folder (the same STORE_ID_FILE content): it moves bytes by path. */
  sees_images: boolean;
  /** Assignments it takes beyond its slots, waiting on it for a slot (its registration's `prefetch`). */
  prefetch: number;
  /** It takes several assignments in one `assign_many` call (its registration's `assign_many`). */
  assign_many: boolean;
  /** The leases its last heartbeat said wait for a slot, never started: if it dies, they go back at no cost. */
  waiting: ReadonlySet<string>;
}

/** What happens to workers, as the registry sees it (the activity and the history keep it). */
export interface WorkerEvents {
  /** It registered: a new record, a record known from before a restart, or the same process again. */
  registered(worker: LiveWorker, now: number): void;
  /** A heartbeat or a registration, with its report. */
  heard(worker: LiveWorker, resources: Resources, now: number): void;
  /** It was silent past its lease. */
  died(worker: LiveWorker, now: number): void;
  /** It was dead and was heard again. */
  back(worker: LiveWorker, now: number): void;
  /** It said goodbye, or another process took its name. */
  left(worker: LiveWorker, now: number): void;
}

const UNHEEDED: WorkerEvents = {
  registered: () => undefined,
  heard: () => undefined,
  died: () => undefined,
  back: () => undefined,
  left: () => undefined,
};

export class WorkerRegistry {
  private readonly workers = new Map<string, LiveWorker>();

  constructor(private readonly events: WorkerEvents = UNHEEDED) {}

  add(record: WorkerRecord, token: string, resources: Resources, now: number): LiveWorker {
    const live: LiveWorker = {
      record,
      token,
      state: 'alive',
      last_seen: now,
      resting_until: 0,
      resources,
      sees_images: false,
      prefetch: 0,
      assign_many: false,
      waiting: new Set(),
    };
    this.workers.set(record.id, live);
    this.events.registered(live, now);
    this.events.heard(live, resources, now);
    return live;
  }

  /** The same worker process registered again (its session was lost): heard, and counted as a registration. */
  registeredAgain(worker: LiveWorker, resources: Resources, now: number): void {
    this.heard(worker, resources, now);
    this.events.registered(worker, now);
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
    const wasDead = worker.state === 'dead';
    worker.last_seen = now;
    worker.state = 'alive';
    worker.resources = resources;
    if (wasDead) this.events.back(worker, now);
    this.events.heard(worker, resources, now);
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
        this.events.died(worker, now);
      }
    }
    return died;
  }

  /** The worker left (goodbye, or replaced by a new process of its name): it takes no more calls. */
  leave(worker: LiveWorker, now: number): void {
    worker.state = 'left';
    this.events.left(worker, now);
  }

  /** The worker declined or could not be reached: no assignments for it before `until` (epoch ms). */
  rest(id: string, until: number): void {
    const worker = this.workers.get(id);
    if (worker) worker.resting_until = until;
  }

  remove(id: string): void {
    this.workers.delete(id);
  }
}
