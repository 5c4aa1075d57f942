import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.js';
import type { Assignment, LeaseRef } from '../common/protocol.js';
import type { ApiClient } from './api-client.js';
import type { FilterEngine } from './engines/index.js';
import type { JobFailure } from './failure-report.js';
import { runJob } from './job-runner.js';
import { jobPeakBytes, type MemoryBudget } from './memory-budget.js';
import { learnJobMs, prefetchFor, type PrefetchSetting } from './prefetch.js';
import { API_ONLY_TRANSFERS, type TransferOptions } from './transfers.js';

interface RunningJob {
  params: Assignment;
  abort: AbortController;
  /** Settles once the job has ended and its outcome is reported. */
  done: Promise<void>;
}

/** A job taken beyond the slots, waiting for one to free and for room in the memory budget. */
interface WaitingJob {
  jobId: string;
  bytes: number;
  admit: () => void;
}

/** The jobs this worker holds, from assignment until their outcome is reported, and the leases they keep. */
export class Slots {
  private readonly jobs = new Map<string, RunningJob>();
  /** Running jobs whose result upload is in flight. */
  private readonly finishing = new Set<string>();
  /** Jobs whose work is done and whose result is being reported: their leases still need renewing. */
  private readonly reporting = new Map<string, LeaseRef>();
  /** Taken jobs not started yet, in the order they came. */
  private readonly waiting: WaitingJob[] = [];
  private draining = false;
  /** When each running job got its slot, and how long the jobs typically work (from their slot to their result). */
  private readonly workingSince = new Map<string, number>();
  private typicalJobMs: number | null = null;

  constructor(
    private readonly size: number,
    private readonly engine: FilterEngine,
    private readonly reportFailure: (job: Assignment, failure: JobFailure) => Promise<void>,
    private readonly log: Logger,
    /** Each job is given up this long after it started (--job-deadline). */
    private readonly jobDeadlineMs: number,
    /** What the jobs may take in memory together (--max-memory). */
    private readonly memory: MemoryBudget,
    /** Where the jobs can move bytes themselves (--images-dir), and the time limits of presigned transfers. */
    private readonly transfers: TransferOptions = API_ONLY_TRANSFERS,
    /** The API of the worker's registration now: results follow it when their own API does not answer. */
    private readonly currentApi?: () => ApiClient | null,
    /** Jobs taken beyond `size`, waiting for a slot (--prefetch): a number, or auto (prefetch.ts). */
    private readonly prefetch: PrefetchSetting = 0,
  ) {}

  /** The jobs it takes beyond its slots now: --prefetch, or what auto makes of its jobs' length so far. */
  prefetchNow(): number {
    return prefetchFor(this.prefetch, this.size, this.typicalJobMs);
  }

  /** Jobs held: running, waiting for a slot, or uploading their result. */
  get running(): number {
    return this.jobs.size;
  }

  /** Jobs that hold a slot: taken, neither waiting for one nor done with their work. */
  private get working(): number {
    return this.jobs.size - this.finishing.size - this.waiting.length;
  }

  /**
   * Whether the job may be taken now: a free slot, or room among the jobs taken beyond the slots; and room in
   * the memory budget beside the running jobs (a declined job goes back to the queue at no cost, and the
   * scheduler offers it again later).
   */
  accepts(params: Assignment): boolean {
    // a job whose result is being uploaded holds no slot: the controller counts it done as soon as it
    // answers that upload, and may offer the next job before this worker has read the answer
    const taken = this.jobs.size - this.finishing.size;
    if (this.draining || taken >= this.size + this.prefetchNow() || this.jobs.has(params.job_id)) return false;
    const bytes = jobPeakBytes(this.engine.name, params.width, params.height, params.operations);
    if (this.memory.fits(bytes)) return true;
    this.log.debug({ job_id: params.job_id, memory: this.memory.describe(bytes) }, 'job declined: memory budget');
    return false;
  }

  /** `maxPixels`: the API's --max-pixels (from the registration), which the engine enforces too. */
  start(params: Assignment, api: ApiClient, maxPixels?: number): void {
    const jobId = params.job_id;
    const abort = new AbortController();
    const entry: RunningJob = { params, abort, done: Promise.resolve() };
    this.jobs.set(jobId, entry);
    const bytes = jobPeakBytes(this.engine.name, params.width, params.height, params.operations);
    if (bytes > this.memory.budgetBytes)
      this.log.warn(
        { job_id: jobId, memory: this.memory.describe(bytes) },
        'a job larger than the memory budget (--max-memory) runs alone',
      );
    // the slot and the memory free as soon as the work is done: the controller may assign the next job
    // while the report is in flight, and a waiting one starts
    const uploading = (): void => {
      const since = this.workingSince.get(jobId);
      if (since !== undefined) this.typicalJobMs = learnJobMs(this.typicalJobMs, performance.now() - since);
      this.workingSince.delete(jobId);
      this.finishing.add(jobId);
      this.memory.give(jobId);
      this.admitWaiting();
    };
    const log = this.log.child({ job_id: jobId });
    const options = {
      admitted: (signal: AbortSignal) => this.admission(jobId, bytes, signal),
      deadlineMs: this.jobDeadlineMs,
      transfers: this.transfers,
      ...(this.currentApi ? { currentApi: this.currentApi } : {}),
      ...(maxPixels === undefined ? {} : { maxPixels }),
    };
    entry.done = runJob(params, api, this.engine, abort.signal, log, uploading, options).then(async (outcome) => {
      this.leaveWaiting(jobId);
      this.workingSince.delete(jobId);
      this.jobs.delete(jobId);
      this.finishing.delete(jobId);
      this.memory.give(jobId);
      this.admitWaiting();
      if (outcome.kind === 'dropped') this.log.info({ job_id: jobId, reason: outcome.reason }, 'job dropped');
      // the answered upload of the filtered image (or report of the stored one) was the completion: nothing
      // is left to report
      if (outcome.kind !== 'failed') return;
      this.reporting.set(jobId, { job_id: jobId, lease_id: params.lease_id });
      try {
        await this.reportFailure(params, outcome);
      } finally {
        this.reporting.delete(jobId);
      }
    });
  }

  /**
   * Settles when the job may start: at once with a slot free and room in the memory budget, else once
   * earlier jobs make room (waiting jobs start in the order they came). Its memory is taken then.
   */
  private admission(jobId: string, bytes: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.leaveWaiting(jobId);
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      const admit = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.memory.take(jobId, bytes);
        this.workingSince.set(jobId, performance.now());
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push({ jobId, bytes, admit });
      this.admitWaiting();
    });
  }

  private admitWaiting(): void {
    for (;;) {
      const next = this.waiting[0];
      if (!next || this.draining || this.working >= this.size) return;
      // a job larger than the budget runs alone
      if (this.working > 0 && !this.memory.fits(next.bytes)) return;
      this.waiting.shift();
      next.admit();
    }
  }

  private leaveWaiting(jobId: string): void {
    const at = this.waiting.findIndex((waiting) => waiting.jobId === jobId);
    if (at >= 0) this.waiting.splice(at, 1);
  }

  /** The scheduler's cancel: aborts the job even while its result uploads. */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    job?.abort.abort();
    return !!job;
  }

  /** Aborts the jobs whose lease has moved on. */
  leasesLost(jobIds: readonly string[]): void {
    // a result on its way is not cancelled: the upload's answer (201, or 409 when the lease moved on) settles it
    for (const jobId of jobIds) if (!this.finishing.has(jobId)) this.jobs.get(jobId)?.abort.abort();
  }

  waitingLeases(): string[] {
    return this.waiting.flatMap(({ jobId }) => this.jobs.get(jobId)?.params.lease_id ?? []);
  }

  heldLeases(): LeaseRef[] {
    return [
      ...[...this.jobs.values()].map((job) => ({ job_id: job.params.job_id, lease_id: job.params.lease_id })),
      ...this.reporting.values(),
    ];
  }

  /**
   * Takes no more jobs and starts none of those waiting; lets the running ones finish for up to `ms`, then
   * aborts the rest. Returns the leases of the waiting ones, never started: the goodbye hands them back at no cost.
   */
  async drain(ms: number): Promise<LeaseRef[]> {
    this.draining = true;
    const waiting = new Set(this.waiting.map((job) => job.jobId));
    const started = [...this.jobs.values()].filter((job) => !waiting.has(job.params.job_id));
    const drained = Promise.all(started.map((job) => job.done));
    const timedOut = await Promise.race([drained.then(() => false), sleep(ms).then(() => true)]);
    const unstarted: LeaseRef[] = [];
    for (const job of this.jobs.values()) {
      const { job_id, lease_id } = job.params;
      if (waiting.has(job_id)) unstarted.push({ job_id, lease_id });
      if (timedOut || waiting.has(job_id)) job.abort.abort();
    }
    return unstarted;
  }
}
