import {
  assignJob,
  cancelJob,
  completeJob,
  createJob,
  deleteJob,
  dropResult,
  expireLease,
  failJob,
  isFinished,
  holderRefusal,
  overdueAt,
  regrantLease,
  releaseJob,
  renewLease,
  retryJob,
  startJob,
  timeOutJob,
  unassignJob,
  type JobResult,
  type Refusal,
  type RetryPolicy,
  type Transition,
} from './jobs/index.js';
import { JobQueue, type Runnable } from './job-queue.js';
import { JobTally, type JobCounts } from './job-tally.js';
import { own, type Job, type JobState, type Store } from './store/index.js';

/** A job changed state. */
export interface JobChange {
  job: Job;
  /** The state it left; null for a new job. */
  from: JobState | null;
  /** When it entered the state it left (epoch ms); for a new job, its creation. */
  since: number;
  /** The worker that held its lease before the change (null: none did). */
  holder: string | null;
  /** The lease it had before the change (null: none). */
  lease: string | null;
}

export type TransitionName =
  | 'assign'
  | 'start'
  | 'renew'
  | 'complete'
  | 'fail'
  | 'release'
  | 'unassign'
  | 'expire'
  | 'timeout'
  | 'retry'
  | 'cancel'
  | 'drop_result';

/** A transition that changed nothing, and why. */
export interface JobRefusal {
  transition: TransitionName;
  refusal: Refusal;
  job_id: string;
}

export interface JobBookHooks {
  /** Something changed that may let the scheduler place more work. */
  onWork(): void;
  /** Every change of a job's state, as it happens (listeners must be quick). */
  onChange(change: JobChange): void;
  /** Every refused transition, as it happens (listeners must be quick). */
  onRefused(refusal: JobRefusal): void;
}

interface Before {
  from: JobState;
  since: number;
  holder: string | null;
}

/** The controller's own overload, as the sweep measured it (see lease-sweeper.ts). */
export interface Overload {
  /** How long the controller itself was stalled since `since` (epoch ms): that much later a lease counts as expired. */
  graceMs(since: number): number;
  /** False while the controller is overloaded: what expires then costs no attempt. */
  charged: boolean;
}

const NO_OVERLOAD: Overload = { graceMs: () => 0, charged: true };
const NO_LEASES: ReadonlySet<string> = new Set();
/** Jobs remembered as released at no cost while they waited on a worker that died (see releaseAll). */
const MAX_REMEMBERED_WAITING = 10_000;

const NO_HOOKS: JobBookHooks = { onWork: () => undefined, onChange: () => undefined, onRefused: () => undefined };

/**
 * The job transitions bound to the store (each one marks the job changed for the next commit), plus
 * what keeps the scheduler, the lease sweep, the views and the metrics cheap however many jobs have
 * finished: the queue (grouped by what the jobs need, oldest upload first), the jobs each worker holds,
 * and the tally of jobs per state. Transitions change memory at once; callers commit (coalesced)
 * before they acknowledge anything to the outside.
 */
export class JobBook {
  private readonly queue: JobQueue;
  private readonly leasedBy = new Map<string, Set<string>>();
  /** The jobs released once at no cost as waiting jobs of a worker that died: the next such release costs. */
  private readonly releasedWaiting = new Set<string>();
  private readonly hooks: JobBookHooks;
  private readonly counts: JobTally;

  constructor(
    private readonly store: Store,
    private readonly policy: RetryPolicy,
    private readonly leaseMs: number,
    private readonly jobTimeoutMs: number,
    hooks: Partial<JobBookHooks> = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.hooks = { ...NO_HOOKS, ...hooks };
    const order = (jobId: string): number => this.uploadOrder(jobId);
    this.queue = new JobQueue(store, order);
    const now = clock();
    const jobs = store.values('jobs');
    const queued: Job[] = [];
    for (const job of jobs) {
      if (job.state === 'queued') queued.push(job);
      if (job.lease && regrantLease(job, leaseMs, now).ok) this.hold(job.lease.worker_id, job.id);
    }
    queued.sort((a, b) => this.uploadOrder(a.id) - this.uploadOrder(b.id));
    this.queue.load(queued, now);
    this.counts = new JobTally(order, jobs);
    store.onRollback((restored, undone) => this.reindex(restored.get('jobs') ?? [], undone.get('jobs')));
  }

  /** Jobs per state, in all and per workload, and each workload's done and failed jobs in upload order. */
  get tally(): JobCounts {
    return this.counts;
  }

  /** Something changed that may let the scheduler place more work (a worker joined, came back, ...). */
  poke(): void {
    this.hooks.onWork();
  }

  create(workloadId: string, imageId: string): Job {
    const job = createJob(this.store.data, workloadId, imageId, this.clock());
    this.store.changed('jobs', job.id, undefined);
    this.queue.add(job);
    this.counts.moved(job, null);
    this.hooks.onChange({ job, from: null, since: Date.parse(job.created_at), holder: null, lease: null });
    this.hooks.onWork();
    return job;
  }

  /**
   * Queued jobs whose backoff has passed, oldest upload first: a job that comes back to the queue keeps
   * its place (the same order a book rebuilt after a restart has). The caller may assign as it goes.
   * With `runnable`, only the jobs of the groups it accepts (see JobQueue.ready): the others are not
   * walked at all.
   */
  ready(now: number, runnable?: Runnable): Generator<Job> {
    return this.queue.ready(now, runnable);
  }

  /** The earliest time a queued job in backoff becomes ready, or null. */
  nextBackoffEnd(now: number): number | null {
    return this.queue.nextBackoffEnd(now);
  }

  heldBy(workerId: string): ReadonlySet<string> {
    return this.leasedBy.get(workerId) ?? new Set();
  }

  /** How many jobs hold a lease, over all workers. */
  leasedCount(): number {
    let count = 0;
    for (const jobs of this.leasedBy.values()) count += jobs.size;
    return count;
  }

  /**
   * Why the holder of this lease may not make the transition now, or null when it may: a check that
   * changes nothing, for work that must not start (a result's file) unless the transition can follow.
   * A refusal is reported like the transition's own.
   */
  holderRefusal(transition: TransitionName, jobId: string, workerId: string, leaseId: string): Refusal | null {
    const refusal = holderRefusal(own(this.store.data.jobs, jobId), workerId, leaseId);
    if (refusal) this.hooks.onRefused({ transition, refusal, job_id: jobId });
    return refusal;
  }

  assign(jobId: string, workerId: string): Transition {
    return this.apply('assign', jobId, (now) => assignJob(this.store.data, jobId, workerId, this.leaseMs, now));
  }

  start(jobId: string, workerId: string, leaseId: string): Transition {
    return this.apply('start', jobId, (now) => startJob(this.store.data, jobId, workerId, leaseId, this.leaseMs, now));
  }

  /** Not journaled, and not a change of state: leases are re-granted for one period after a restart. */
  renew(jobId: string, workerId: string, leaseId: string): Transition {
    const result = renewLease(this.store.data, jobId, workerId, leaseId, this.leaseMs, this.clock());
    if (!result.ok) this.hooks.onRefused({ transition: 'renew', refusal: result.refusal, job_id: jobId });
    return result;
  }

  complete(jobId: string, workerId: string, leaseId: string, result: JobResult): Transition {
    return this.apply('complete', jobId, (now) => completeJob(this.store.data, jobId, workerId, leaseId, result, now));
  }

  fail(jobId: string, workerId: string, leaseId: string, error: string, retryable: boolean): Transition {
    return this.apply('fail', jobId, (now) =>
      failJob(this.store.data, jobId, workerId, leaseId, error, retryable, this.policy, now),
    );
  }

  /** `charged` false: the release costs no attempt (the controller was overloaded: see requeueJob). */
  release(jobId: string, workerId: string, leaseId: string, reason: string, charged = true): Transition {
    return this.apply('release', jobId, (now) =>
      releaseJob(this.store.data, jobId, workerId, leaseId, reason, this.policy, now, charged),
    );
  }

  unassign(jobId: string, workerId: string, leaseId: string): Transition {
    return this.apply('unassign', jobId, (now) => unassignJob(this.store.data, jobId, workerId, leaseId, now));
  }

  /**
   * Release every job a worker holds (it died, left, or was replaced); `charged` as for release(). The leases in
   * `waiting` (its last heartbeat said they waited for a slot) go back at no cost, once per job: one that
   * started after that heartbeat and took the worker down with it (an image that crashes the decoder) costs
   * an attempt the next time, so it cannot take down workers for good.
   */
  releaseAll(workerId: string, reason: string, charged = true, waiting: ReadonlySet<string> = NO_LEASES): Job[] {
    const released: Job[] = [];
    for (const jobId of [...this.heldBy(workerId)]) {
      const lease = this.store.data.jobs[jobId]?.lease;
      if (!lease) continue;
      const unstarted = waiting.has(lease.lease_id) && this.freeReleaseOnce(jobId);
      const why = unstarted ? `${reason}; the job had not started there (it waited for a slot)` : reason;
      const result = this.release(jobId, workerId, lease.lease_id, why, charged && !unstarted);
      if (result.ok) released.push(result.job);
    }
    return released;
  }

  /** Whether the job has not been released at no cost as a waiting job before; counts this one. */
  private freeReleaseOnce(jobId: string): boolean {
    if (this.releasedWaiting.has(jobId)) return false;
    if (this.releasedWaiting.size >= MAX_REMEMBERED_WAITING) {
      // forget the jobs that have ended; the memory stays bounded whatever happens
      for (const id of this.releasedWaiting) {
        const job = own(this.store.data.jobs, id);
        if (!job || isFinished(job)) this.releasedWaiting.delete(id);
      }
      if (this.releasedWaiting.size >= MAX_REMEMBERED_WAITING) return false;
    }
    this.releasedWaiting.add(jobId);
    return true;
  }

  /**
   * The stalled-job sweep: releases every lease past its expiry. It walks only the jobs that hold a
   * lease (the index), never the jobs that finished, so its cost does not grow with history.
   */
  expire(now: number, overload: Overload = NO_OVERLOAD): Job[] {
    const expired: Job[] = [];
    for (const job of this.held()) {
      if (!job.lease || job.lease.expires_at > now) continue;
      // the controller's own stalls since the lease was last renewed do not count against it
      const grace = overload.graceMs(job.lease.expires_at - this.leaseMs);
      if (job.lease.expires_at + grace > now) continue;
      const result = this.apply('expire', job.id, () =>
        expireLease(this.store.data, job.id, this.policy, now, grace, overload.charged),
      );
      if (result.ok) expired.push(result.job);
    }
    return expired;
  }

  /**
   * The run-time sweep: releases every running job whose run has lasted the job timeout, as a failed attempt,
   * however often its lease was renewed. Walks only the held jobs, as expire() does.
   */
  timeOut(now: number): Job[] {
    const timedOut: Job[] = [];
    for (const job of this.held()) {
      const due = overdueAt(job, this.jobTimeoutMs);
      if (due === null || due > now) continue;
      const result = this.apply('timeout', job.id, () =>
        timeOutJob(this.store.data, job.id, this.jobTimeoutMs, this.policy, now),
      );
      if (result.ok) timedOut.push(result.job);
    }
    return timedOut;
  }

  /**
   * Every failed job of the workload goes back to the queue, with fresh attempts (the owner asked
   * for it). Returns the jobs requeued; none when nothing had failed.
   */
  retryFailed(workloadId: string): Job[] {
    const retried: Job[] = [];
    // only failed jobs are tried, in upload order (the others would only count as refusals); a copy,
    // since each retry takes its job off the list
    for (const jobId of [...this.tally.of(workloadId).failed]) {
      const result = this.apply('retry', jobId, (now) => retryJob(this.store.data, jobId, now));
      if (result.ok) retried.push(result.job);
    }
    return retried;
  }

  /** The owner cancelled the job (see cancelJob); a holder's lease ends with it. */
  cancel(jobId: string): Transition {
    return this.apply('cancel', jobId, (now) => cancelJob(this.store.data, jobId, now));
  }

  /** The job's filtered image was deleted: the job stays done, without a result. */
  dropResult(jobId: string, filteredImageId: string): Transition {
    return this.apply('drop_result', jobId, (now) => dropResult(this.store.data, jobId, filteredImageId, now));
  }

  /**
   * Deletes a finished job (its original was deleted; cancel an unfinished one first). Returns it, or
   * null when it is not there or has not finished.
   */
  remove(jobId: string): Job | null {
    const prior = own(this.store.data.jobs, jobId);
    if (!prior || !isFinished(prior)) return null;
    const copy = structuredClone(prior);
    // while the record is there: the tally finds the job in its lists by the job's upload order, read from it
    this.counts.forget(prior);
    const removed = deleteJob(this.store.data, jobId);
    this.store.changed('jobs', jobId, copy);
    return removed;
  }

  /**
   * Deletes every job of a workload that is being deleted (all finished: cancel the others first), and
   * everything kept about the workload: its tally at once, its queue group. Throws if one has not
   * finished: the counts would no longer match the jobs.
   */
  removeWorkload(workloadId: string, jobIds: Iterable<string>): void {
    for (const jobId of jobIds) {
      const prior = own(this.store.data.jobs, jobId);
      if (!prior) continue;
      if (prior.workload_id !== workloadId || !deleteJob(this.store.data, jobId))
        throw new Error(`job ${jobId} is not a finished job of workload ${workloadId}`);
      // deleted untouched (a cancel before it kept its own copy): the job itself is what a rollback puts back
      this.store.changed('jobs', jobId, prior);
    }
    this.counts.drop(workloadId);
    this.queue.forgetWorkload(workloadId);
  }

  /**
   * Runs one transition; on success marks the job for the next commit, keeps the indexes true to the
   * job's new state and lease, and tells the hooks; on refusal, tells the hooks why.
   */
  private apply(name: TransitionName, jobId: string, run: (now: number) => Transition): Transition {
    const before = this.before(jobId);
    const prior = own(this.store.data.jobs, jobId);
    const copy = prior && structuredClone(prior);
    const now = this.clock();
    const result = run(now);
    if (!result.ok) {
      this.hooks.onRefused({ transition: name, refusal: result.refusal, job_id: jobId });
      return result;
    }
    const { job } = result;
    this.store.changed('jobs', job.id, copy);
    const holder = job.lease?.worker_id ?? null;
    if (before?.holder && before.holder !== holder) this.unhold(before.holder, job.id);
    if (holder) this.hold(holder, job.id);
    if (job.state === 'queued' && before?.from !== 'queued') this.queue.requeue(job, now);
    else if (job.state !== 'queued' && before?.from === 'queued') this.queue.remove(job);
    if (before) {
      this.counts.moved(job, before.from);
      const lease = copy?.lease?.lease_id ?? null;
      this.hooks.onChange({ job, from: before.from, since: before.since, holder: before.holder, lease });
    }
    // a job back in the queue, or a slot freed: the scheduler may place more
    if (job.state === 'queued' || (before?.holder && !holder)) this.hooks.onWork();
    return result;
  }

  /**
   * After a failed commit put these jobs back as they were: the queue, the holders and the tally follow.
   * `undone` holds each job as it was just before (undefined: it did not exist).
   */
  private reindex(jobIds: readonly string[], undone: ReadonlyMap<string, unknown> | undefined): void {
    const now = this.clock();
    for (const jobId of jobIds) {
      const was = undone?.get(jobId) as Job | undefined;
      if (was) {
        if (was.state === 'queued') this.queue.remove(was);
        if (was.lease) this.unhold(was.lease.worker_id, jobId);
        this.counts.forget(was);
      }
      const job = own(this.store.data.jobs, jobId);
      if (job) {
        if (job.state === 'queued') this.queue.requeue(job, now);
        if (job.lease) this.hold(job.lease.worker_id, jobId);
        this.counts.moved(job, null);
      }
    }
    if (jobIds.length > 0) this.hooks.onWork();
  }

  /** The jobs that hold a lease, from a copy of the index: the caller may release them as it goes. */
  private *held(): Generator<Job> {
    for (const jobs of [...this.leasedBy.values()]) {
      for (const jobId of [...jobs]) {
        const job = this.store.data.jobs[jobId];
        if (job) yield job;
      }
    }
  }

  /** Where the job's original stands in upload order (the image's persisted sequence number). */
  private uploadOrder(jobId: string): number {
    const job = this.store.data.jobs[jobId];
    return (job && this.store.data.images[job.image_id]?.seq) ?? Number.MAX_SAFE_INTEGER;
  }

  private before(jobId: string): Before | null {
    const job = own(this.store.data.jobs, jobId);
    return job ? { from: job.state, since: Date.parse(job.updated_at), holder: job.lease?.worker_id ?? null } : null;
  }

  private hold(workerId: string, jobId: string): void {
    let jobs = this.leasedBy.get(workerId);
    if (!jobs) {
      jobs = new Set();
      this.leasedBy.set(workerId, jobs);
    }
    jobs.add(jobId);
  }

  private unhold(workerId: string, jobId: string): void {
    const jobs = this.leasedBy.get(workerId);
    jobs?.delete(jobId);
    if (jobs?.size === 0) this.leasedBy.delete(workerId);
  }
}
