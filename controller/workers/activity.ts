import type { Resources } from '../../common/protocol.js';
import type { JobChange } from '../job-book.js';
import { own, type Store, type WorkerActivity } from '../store/index.js';

/** Counters (jobs, bytes, the last heartbeat) are written at most this often per worker; events at once. */
export const ACTIVITY_WRITE_MS = 60_000;
/** Registration times and deaths kept per worker: the newest. */
export const EVENTS_KEPT = 20;

interface Entry {
  activity: WorkerActivity;
  /** Changed since it was last written. */
  dirty: boolean;
  /** When it was last written (epoch ms). */
  written: number;
}

function noActivity(workerId: string): WorkerActivity {
  return {
    worker_id: workerId,
    registrations: 0,
    registered: [],
    left_at: null,
    deaths: 0,
    died: [],
    jobs_done: 0,
    jobs_failed: 0,
    jobs_requeued: 0,
    bytes_in: 0,
    bytes_out: 0,
    last_seen: null,
    resources: null,
  };
}

function keepNewest<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > EVENTS_KEPT) list.splice(0, list.length - EVENTS_KEPT);
}

/**
 * What each worker did, kept in the datastore (`worker_activity`, one record per worker): when it
 * registered, died, came back and left (written as it happens: rare), and how many jobs it finished,
 * failed and lost and how many bytes it moved (counted in memory, written at most once a minute and when
 * the server closes, so a job or a download costs no write). The book holds the live counts; the store
 * holds them as of their last write, which a killed server may lose up to a minute of.
 */
export class WorkerActivityBook {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly store: Store) {
    // a failed commit put back older records: the counts in memory are still true, and go out again;
    // a worker whose registration did not commit is not counted
    store.onRollback((restored) => {
      for (const id of restored.get('worker_activity') ?? []) {
        const entry = this.entries.get(id);
        if (entry) entry.dirty = true;
      }
      for (const id of restored.get('workers') ?? []) if (!own(store.data.workers, id)) this.entries.delete(id);
    });
  }

  registered(workerId: string, now: number): void {
    this.event(workerId, now, (activity) => {
      activity.registrations += 1;
      keepNewest(activity.registered, new Date(now).toISOString());
      activity.left_at = null;
    });
  }

  died(workerId: string, now: number): void {
    this.event(workerId, now, (activity) => {
      activity.deaths += 1;
      keepNewest(activity.died, { at: new Date(now).toISOString(), back_at: null });
    });
  }

  back(workerId: string, now: number): void {
    this.event(workerId, now, (activity) => {
      const last = activity.died.at(-1);
      if (last && last.back_at === null) last.back_at = new Date(now).toISOString();
    });
  }

  left(workerId: string, now: number): void {
    this.event(workerId, now, (activity) => {
      activity.left_at = new Date(now).toISOString();
    });
  }

  /** A heartbeat: when, and what it reported (shown for a worker the registry no longer holds). */
  heard(workerId: string, resources: Resources, now: number): void {
    this.count(workerId, (activity) => {
      activity.last_seen = now;
      activity.resources = resources;
    });
  }

  /** A job changed state: the worker that held it finished it, failed it for good, or lost the run. */
  jobChanged({ holder, from, job }: JobChange): void {
    if (holder === null) return;
    if (job.state === 'done') this.count(holder, (activity) => (activity.jobs_done += 1));
    else if (job.state === 'failed') this.count(holder, (activity) => (activity.jobs_failed += 1));
    else if (job.state === 'queued' && from === 'running')
      this.count(holder, (activity) => (activity.jobs_requeued += 1));
  }

  /** The worker downloaded an original of this many bytes: bytes out of the server. */
  sentTo(workerId: string, bytes: number): void {
    this.count(workerId, (activity) => (activity.bytes_out += bytes));
  }

  /** The worker uploaded a result of this many bytes, and it was kept: bytes into the server. */
  receivedFrom(workerId: string, bytes: number): void {
    this.count(workerId, (activity) => (activity.bytes_in += bytes));
  }

  /** The worker's activity now; null for a worker with no record, or none yet. */
  view(workerId: string): WorkerActivity | null {
    return this.entries.get(workerId)?.activity ?? own(this.store.data.worker_activity, workerId) ?? null;
  }

  /**
   * Writes the counts that changed and were last written a minute ago or more; forgets (in memory) the
   * workers that left and are written. True when it changed the store: commit.
   */
  tick(now: number): boolean {
    let changed = false;
    for (const [id, entry] of this.entries) {
      if (entry.dirty && now - entry.written >= ACTIVITY_WRITE_MS) {
        this.write(entry, now);
        changed = true;
      }
      if (!entry.dirty && entry.activity.left_at !== null) this.entries.delete(id);
    }
    return changed;
  }

  /** Writes every count that changed (the server is closing). */
  flush(now: number): boolean {
    let changed = false;
    for (const entry of this.entries.values()) {
      if (!entry.dirty) continue;
      this.write(entry, now);
      changed = true;
    }
    return changed;
  }

  private entry(workerId: string): Entry | null {
    let entry = this.entries.get(workerId);
    if (entry) return entry;
    // a worker token names a worker record; nothing else is counted
    if (!own(this.store.data.workers, workerId)) return null;
    const kept = own(this.store.data.worker_activity, workerId);
    entry = {
      activity: kept ? structuredClone(kept) : noActivity(workerId),
      dirty: false,
      written: Number.NEGATIVE_INFINITY,
    };
    this.entries.set(workerId, entry);
    return entry;
  }

  private event(workerId: string, now: number, apply: (activity: WorkerActivity) => void): void {
    const entry = this.entry(workerId);
    if (!entry) return;
    apply(entry.activity);
    this.write(entry, now);
  }

  private count(workerId: string, apply: (activity: WorkerActivity) => void): void {
    const entry = this.entry(workerId);
    if (!entry) return;
    apply(entry.activity);
    entry.dirty = true;
  }

  /** The record becomes a copy of the live counts; later counts reach the store with the next write. */
  private write(entry: Entry, now: number): void {
    const id = entry.activity.worker_id;
    this.store.change('worker_activity', id);
    this.store.data.worker_activity[id] = structuredClone(entry.activity);
    entry.dirty = false;
    entry.written = now;
  }
}
