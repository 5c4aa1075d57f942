import type { Logger } from '../common/log.js';
import type { JobBook } from './job-book.js';
import type { Store } from './store/index.js';
import type { WorkerRegistry } from './workers/index.js';

export interface LeaseSweeper {
  /** One sweep now (the timer runs them every intervalMs). */
  sweep(now: number): void;
  stop(): void;
}

/**
 * The liveness and stalled-job sweep: a worker silent for longer than the lease is dead and its jobs
 * go back to the queue; so does any job whose lease ran out (its holder stopped renewing it), and any job
 * that has run for the job timeout (its holder renews the lease, but the job does not move). Then whatever
 * changed is committed. The sweep walks the live workers and the jobs that hold a lease,
 * never the jobs that finished.
 */
export function startLeaseSweeper(
  parts: { registry: WorkerRegistry; jobs: JobBook; store: Store },
  leaseMs: number,
  intervalMs: number,
  log: Logger,
): LeaseSweeper {
  const { registry, jobs, store } = parts;

  function sweep(now: number): void {
    for (const worker of registry.markSilentDead(leaseMs, now)) {
      log.warn(
        { worker: worker.record.name, silent_ms: now - worker.last_seen },
        'worker missed its heartbeats: marked dead',
      );
      jobs.releaseAll(worker.record.id, `worker ${worker.record.name} stopped sending heartbeats`);
    }
    const expired = jobs.expire(now);
    if (expired.length > 0) log.warn({ jobs: expired.map((job) => job.id) }, 'leases expired: jobs requeued');
    const timedOut = jobs.timeOut(now);
    if (timedOut.length > 0)
      log.warn({ jobs: timedOut.map((job) => job.id) }, 'jobs ran past the job timeout: released as failed attempts');
    void store.commit().catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
  }

  const timer = setInterval(() => sweep(Date.now()), intervalMs);
  return {
    sweep,
    stop: () => clearInterval(timer),
  };
}
