import type { Resources } from '../common/protocol.js';
import type { Operation } from '../common/operations/index.js';
import type { DirectTransfers, Transfers } from './direct-transfers.js';
import type { JobBook, JobChange } from './job-book.js';
import { capabilitiesOf, chainOf, needsOf, type JobNeeds } from './workload-needs.js';
import type { Runnable } from './job-queue.js';
import type { Refusal } from './jobs/index.js';
import type { Store } from './store/index.js';
import type { WorkerRegistry } from './workers/index.js';

/** A worker that may take work now, as the scheduler sees it. */
export interface WorkerCandidate {
  id: string;
  name: string;
  /** Authenticates the scheduler's calls to the worker. */
  token: string;
  rpc_address: string;
  /** The jobs it takes at once: its slots, and the assignments it holds beyond them waiting for one (prefetch). */
  slots: number;
  /** Of those, what no job it holds takes. */
  free_slots: number;
  tags: readonly string[];
  filters: readonly string[];
  /** Whether it runs chains of operations, and the operations and output formats its engine can do. */
  chains: boolean;
  operations: readonly string[];
  formats: readonly string[];
  resources: Resources;
  /** It sees the server's images folder: its jobs' bytes go by path. */
  sees_images: boolean;
  /** It takes several assignments in one `assign_many` call. */
  assign_many: boolean;
}

/** A queued job whose backoff has passed, with what a worker needs to run it. */
export interface ReadyJob {
  job_id: string;
  image_id: string;
  workload_id: string;
  /** The course filter; null for a workload of operations. */
  filter: string | null;
  /** The chain to run, every default filled in. */
  operations: Operation[];
  needs: JobNeeds;
  /** The original's dimensions (0 if unknown): the worker estimates the job's memory from them. */
  width: number;
  height: number;
  /** A worker must carry every one of them. */
  tags: readonly string[];
}

/** A job whose lease its owner ended (it was cancelled, or deleted) while a worker held it. */
export interface RevokedLease {
  job_id: string;
  /** The worker that held it, as the scheduler dials it; it is asked to stop the job. */
  worker: Pick<WorkerCandidate, 'id' | 'name' | 'token' | 'rpc_address'>;
}

export type LeaseGrant = { ok: true; lease_id: string } | { ok: false; refusal: Refusal };
export type Outcome = { ok: true } | { ok: false; refusal: Refusal };

/**
 * Everything the scheduler reads and writes, and nothing more. The embedded controller implements it
 * over its job book and worker registry; another datastore implements the same port.
 */
export interface SchedulingPort {
  /** Alive workers that are not resting and have a free slot. */
  candidates(now: number): WorkerCandidate[];
  /**
   * Queued jobs ready to run, oldest upload first, of the needs (filter and tags) that `runnable`
   * accepts. Jobs are grouped by their needs: `runnable` is asked once per group, and again before
   * each job of that group, and a group it refuses is skipped whole for the rest of the walk, without
   * visiting its jobs. The caller's answer may only turn from yes to no during one walk (its free
   * slots fall as it assigns).
   */
  ready(now: number, runnable: Runnable): Iterable<ReadyJob>;
  /** queued -> assigned, leased to the worker. */
  assign(jobId: string, workerId: string): LeaseGrant;
  /** assigned -> running: the worker accepted. */
  start(jobId: string, workerId: string, leaseId: string): Outcome;
  /** assigned -> queued at no cost: the worker declined or could not be reached. */
  unassign(jobId: string, workerId: string, leaseId: string): Outcome;
  /** The worker gets no assignments until then (epoch ms). */
  rest(workerId: string, until: number): void;
  /** True once the worker has left or is unknown: its connection can go. */
  isGone(workerId: string): boolean;
  /** Where a leased job's bytes come from and go, for its worker (presigned URLs, paths, or the API). */
  transfers(jobId: string, worker: Pick<WorkerCandidate, 'sees_images'>, leaseId: string): Promise<Transfers>;
  /** Persists the assignments made so far. */
  commit(): Promise<void>;
  /** Calls the listener whenever work may be placed; returns the unsubscribe. */
  onWork(listener: () => void): () => void;
  /** Calls the listener for each lease a cancellation ended while a live worker held it; returns the unsubscribe. */
  onRevoked(listener: (revoked: RevokedLease) => void): () => void;
}

const THROUGH_THE_API: Transfers = { source: { via: 'api' }, target: { via: 'api' } };

function outcome(result: { ok: true } | { ok: false; refusal: Refusal }): Outcome {
  return result.ok ? { ok: true } : { ok: false, refusal: result.refusal };
}

export function schedulingPort(
  parts: {
    store: Store;
    jobs: JobBook;
    registry: WorkerRegistry;
    /** Absent: every job's bytes go through the API. */
    transfers?: DirectTransfers;
    /** False while the image store is down: no job is given out, it would only fail. Absent: always up. */
    storeAvailable?: () => boolean;
  },
  onWork: (listener: () => void) => () => void,
  onJobChange: (listener: (change: JobChange) => void) => () => void = () => () => undefined,
): SchedulingPort {
  const { store, jobs, registry, transfers } = parts;
  return {
    candidates(now) {
      const found: WorkerCandidate[] = [];
      if (parts.storeAvailable?.() === false) return found;
      for (const worker of registry.alive()) {
        if (worker.resting_until > now) continue;
        const { record } = worker;
        const capacity = record.slots + worker.prefetch;
        const free = capacity - jobs.heldBy(record.id).size;
        if (free <= 0) continue;
        found.push({
          id: record.id,
          name: record.name,
          token: worker.token,
          rpc_address: record.rpc_address,
          slots: capacity,
          free_slots: free,
          tags: record.tags,
          filters: record.filters,
          ...capabilitiesOf(record),
          resources: worker.resources,
          sees_images: worker.sees_images,
          assign_many: worker.assign_many,
        });
      }
      return found;
    },
    *ready(now, runnable) {
      for (const job of jobs.ready(now, runnable)) {
        const workload = store.data.workloads[job.workload_id];
        if (!workload) continue;
        // (an original is never missing: 0 tells the worker nothing, and its download says what is wrong)
        const original = store.data.images[job.image_id];
        yield {
          job_id: job.id,
          image_id: job.image_id,
          workload_id: job.workload_id,
          filter: workload.filter,
          operations: chainOf(workload),
          needs: needsOf(workload),
          width: original?.width ?? 0,
          height: original?.height ?? 0,
          tags: workload.tags,
        };
      }
    },
    assign(jobId, workerId) {
      const result = jobs.assign(jobId, workerId);
      if (!result.ok) return result;
      const lease = result.job.lease;
      return lease ? { ok: true, lease_id: lease.lease_id } : { ok: false, refusal: 'wrong_state' };
    },
    start: (jobId, workerId, leaseId) => outcome(jobs.start(jobId, workerId, leaseId)),
    unassign: (jobId, workerId, leaseId) => outcome(jobs.unassign(jobId, workerId, leaseId)),
    rest: (workerId, until) => registry.rest(workerId, until),
    transfers: (jobId, worker, leaseId) =>
      transfers ? transfers.forJob(jobId, worker.sees_images, leaseId) : Promise.resolve(THROUGH_THE_API),
    isGone(workerId) {
      const worker = registry.get(workerId);
      return !worker || worker.state === 'left';
    },
    // not synced: an assignment lost to a crash is re-derived (the job is queued again, a late result of
    // its lease is refused), and the next acknowledged commit's sync covers it anyway
    commit: () => store.commit({ durable: false }),
    onWork,
    onRevoked(listener) {
      return onJobChange(({ job, holder }) => {
        if (job.state !== 'cancelled' || !holder) return;
        const worker = registry.get(holder);
        if (!worker || worker.state === 'left') return;
        const { id, name, rpc_address } = worker.record;
        listener({ job_id: job.id, worker: { id, name, token: worker.token, rpc_address } });
      });
    },
  };
}
