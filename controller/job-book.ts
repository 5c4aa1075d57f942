import {
  assignJob,
  completeJob,
  createJob,
  expireLeases,
  failJob,
  releaseJob,
  renewLease,
  retryJob,
  startJob,
  unassignJob,
  type RetryPolicy,
} from './jobs/index.js';
import { own, type Job, type JobState, type Lease, type Store } from './store/index.js';

/** A job changed state. */
export interface JobChange {
  job: Job;
  /** The state it left; null for a new job. */
  from: JobState | null;
  /** When it entered the state it left (epoch ms); for a new job, its creation. */
  since: number;
}

interface Prior {
  from: JobState;
  since: number;
}

/**
 * The job transitions bound to the store (each one marks the job changed for the next commit), plus the two indexes the scheduler needs to stay cheap:
 * the queue in upload order and the jobs each worker holds. Transitions change memory at once;
 * callers commit (coalesced) before they acknowledge anything to the outside.
 */
export class JobBook {
  private readonly queue = new Set<string>();
  private readonly leasedBy = new Map<string, Set<string>>();

  constructor(
    private readonly store: Store,
    private readonly policy: RetryPolicy,
    private readonly leaseMs: number,
    private readonly onWork: () => void,
    /** Called on every change of a job's state, as it happens (listeners must be quick). */
    private readonly onChange: (change: JobChange) => void = () => undefined,
  ) {
    const now = Date.now();
    for (const job of Object.values(store.data.jobs)) {
      if (job.state === 'queued') this.queue.add(job.id);
      if (job.lease) {
        // after a restart, holders get one lease period to come back and renew
        job.lease.expires_at = Math.max(job.lease.expires_at, now + leaseMs);
        this.hold(job.lease.worker_id, job.id);
      }
    }
  }

  /** Something changed that may let the scheduler place more work (a worker joined, came back, ...). */
  poke(): void {
    this.onWork();
  }

  create(workloadId: string, imageId: string): Job {
    const job = createJob(this.store.data, workloadId, imageId, Date.now());
    this.store.touch('jobs', job.id);
    this.queue.add(job.id);
    this.onChange({ job, from: null, since: Date.parse(job.created_at) });
    this.onWork();
    return job;
  }

  /** Queued jobs whose backoff has passed, oldest upload first. */
  *ready(now: number): Generator<Job> {
    for (const id of this.queue) {
      const job = this.store.data.jobs[id];
      if (job && job.not_before <= now) yield job;
    }
  }

  /** The earliest time a queued job in backoff becomes ready, or null. */
  nextBackoffEnd(now: number): number | null {
    let earliest: number | null = null;
    for (const id of this.queue) {
      const job = this.store.data.jobs[id];
      if (job && job.not_before > now && (earliest === null || job.not_before < earliest)) earliest = job.not_before;
    }
    return earliest;
  }

  heldBy(workerId: string): ReadonlySet<string> {
    return this.leasedBy.get(workerId) ?? new Set();
  }

  assign(jobId: string, workerId: string): Lease | null {
    const prior = this.prior(jobId);
    const lease = assignJob(this.store.data, jobId, workerId, this.leaseMs, Date.now());
    if (lease) {
      this.store.touch('jobs', jobId);
      this.queue.delete(jobId);
      this.hold(workerId, jobId);
      this.changed(jobId, prior);
    }
    return lease;
  }

  start(jobId: string, workerId: string, leaseId: string): boolean {
    const prior = this.prior(jobId);
    const started = startJob(this.store.data, jobId, workerId, leaseId, this.leaseMs, Date.now());
    if (started) {
      this.store.touch('jobs', jobId);
      this.changed(jobId, prior);
    }
    return started;
  }

  renew(jobId: string, workerId: string, leaseId: string): boolean {
    return renewLease(this.store.data, jobId, workerId, leaseId, this.leaseMs, Date.now());
  }

  complete(jobId: string, workerId: string, leaseId: string, filteredImageId: string): boolean {
    const prior = this.prior(jobId);
    const done = completeJob(this.store.data, jobId, workerId, leaseId, filteredImageId, Date.now());
    if (done) this.settle(workerId, jobId, prior);
    return done;
  }

  fail(jobId: string, workerId: string, leaseId: string, error: string, retryable: boolean): Job | null {
    const prior = this.prior(jobId);
    const job = failJob(this.store.data, jobId, workerId, leaseId, error, retryable, this.policy, Date.now());
    if (job) this.settle(workerId, jobId, prior);
    return job;
  }

  release(jobId: string, workerId: string, leaseId: string, reason: string): Job | null {
    const prior = this.prior(jobId);
    const job = releaseJob(this.store.data, jobId, workerId, leaseId, reason, this.policy, Date.now());
    if (job) this.settle(workerId, jobId, prior);
    return job;
  }

  unassign(jobId: string, workerId: string, leaseId: string): Job | null {
    const prior = this.prior(jobId);
    const job = unassignJob(this.store.data, jobId, workerId, leaseId, Date.now());
    if (job) this.settle(workerId, jobId, prior);
    return job;
  }

  /** Release every job a worker holds (it died, left, or was replaced). */
  releaseAll(workerId: string, reason: string): Job[] {
    const released: Job[] = [];
    for (const jobId of [...this.heldBy(workerId)]) {
      const lease = this.store.data.jobs[jobId]?.lease;
      if (!lease) continue;
      const job = this.release(jobId, workerId, lease.lease_id, reason);
      if (job) released.push(job);
    }
    return released;
  }

  /** The stalled-job sweep. */
  expire(now: number): Job[] {
    // only leased jobs can expire: their states before the sweep, from the index of held jobs
    const priors = new Map<string, Prior | null>();
    for (const held of this.leasedBy.values()) for (const jobId of held) priors.set(jobId, this.prior(jobId));
    const expired = expireLeases(this.store.data, this.policy, now);
    for (const job of expired) this.settle(this.holderOf(job.id) ?? '', job.id, priors.get(job.id) ?? null);
    return expired;
  }

  /**
   * Every failed job of the workload goes back to the queue, with fresh attempts (the owner asked
   * for it). Returns the jobs requeued; none when nothing had failed.
   */
  retryFailed(workloadId: string): Job[] {
    const retried: Job[] = [];
    const now = Date.now();
    for (const imageId of this.store.originals.of(workloadId)) {
      const jobId = this.store.data.images[imageId]?.job_id;
      if (!jobId) continue;
      const prior = this.prior(jobId);
      const job = retryJob(this.store.data, jobId, now);
      if (!job) continue;
      this.store.touch('jobs', job.id);
      this.queue.add(job.id);
      this.changed(job.id, prior);
      retried.push(job);
    }
    if (retried.length > 0) this.onWork();
    return retried;
  }

  private holderOf(jobId: string): string | undefined {
    for (const [workerId, jobs] of this.leasedBy) if (jobs.has(jobId)) return workerId;
    return undefined;
  }

  private hold(workerId: string, jobId: string): void {
    let jobs = this.leasedBy.get(workerId);
    if (!jobs) {
      jobs = new Set();
      this.leasedBy.set(workerId, jobs);
    }
    jobs.add(jobId);
  }

  private settle(workerId: string, jobId: string, prior: Prior | null): void {
    this.store.touch('jobs', jobId);
    const jobs = this.leasedBy.get(workerId);
    jobs?.delete(jobId);
    if (jobs && jobs.size === 0) this.leasedBy.delete(workerId);
    if (own(this.store.data.jobs, jobId)?.state === 'queued') this.queue.add(jobId);
    this.changed(jobId, prior);
    this.onWork();
  }

  /** A job's state and since when, before a transition. */
  private prior(jobId: string): Prior | null {
    const job = own(this.store.data.jobs, jobId);
    return job ? { from: job.state, since: Date.parse(job.updated_at) } : null;
  }

  private changed(jobId: string, prior: Prior | null): void {
    const job = own(this.store.data.jobs, jobId);
    if (job && prior) this.onChange({ job, from: prior.from, since: prior.since });
  }
}
