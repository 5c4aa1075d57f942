import type { Logger } from '../common/log.js';
import type { JobBook, Overload } from './job-book.js';
import type { Store } from './store/index.js';
import type { WorkerRegistry } from './workers/index.js';

export interface LeaseSweeper {
  /** One sweep now (the timer runs them every intervalMs). */
  sweep(now: number): void;
  /** How long the controller itself was stalled since `since` (epoch ms), as the sweep measured it. */
  stalledMs(since: number): number;
  stop(): void;
}

export interface SweepTiming {
  leaseMs: number;
  heartbeatMs: number;
  intervalMs: number;
  /** The session socket's busy time so far (RpcServer.busyMs): a socket busy all along reads no heartbeat. */
  sessionBusyMs?: () => number;
}

/** A session socket busy for this share of a sweep interval or more was saturated for that interval. */
const SATURATED = 0.9;

/**
 * The liveness and stalled-job sweep: a worker silent for longer than the lease is dead and its jobs
 * go back to the queue; so does any job whose lease ran out (its holder stopped renewing it), and any job
 * that has run for the job timeout (its holder renews the lease, but the job does not move). Then whatever
 * changed is committed. The sweep walks the live workers and the jobs that hold a lease,
 * never the jobs that finished.
 *
 * The controller's own overload is not the workers' fault. Each tick measures how late it runs (the event
 * loop was stalled that long) and how busy the session socket was since the last tick (saturated: it read
 * nothing else); that time is a stall. A worker's silence and a lease's age are counted net of the stalls
 * since the worker was last heard (the lease last renewed), and while the stalls of the last lease add up to
 * a heartbeat interval or more, what is released costs no attempt.
 */
export function startLeaseSweeper(
  parts: { registry: WorkerRegistry; jobs: JobBook; store: Store },
  timing: SweepTiming,
  log: Logger,
): LeaseSweeper {
  const { registry, jobs, store } = parts;
  const { leaseMs, heartbeatMs, intervalMs, sessionBusyMs } = timing;
  /** Stalls measured at each tick: `ms` of stall ending at `at`; the last two leases' worth are kept. */
  const stalls: { at: number; ms: number }[] = [];
  let lastTick = Date.now();
  let lastBusy = sessionBusyMs?.() ?? 0;

  function stalledMs(since: number): number {
    let total = 0;
    for (const stall of stalls) if (stall.at > since) total += Math.min(stall.ms, stall.at - since);
    return total;
  }

  function measure(now: number): void {
    const gap = now - lastTick;
    lastTick = now;
    let stall = Math.max(0, gap - intervalMs);
    if (sessionBusyMs) {
      const busy = sessionBusyMs();
      const busyDelta = busy - lastBusy;
      lastBusy = busy;
      if (gap > 0 && busyDelta >= SATURATED * gap) stall = Math.max(stall, busyDelta);
    }
    if (stall > 0) stalls.push({ at: now, ms: stall });
    while (stalls.length > 0 && stalls[0]!.at < now - 2 * leaseMs) stalls.shift();
  }

  function sweep(now: number): void {
    const recentStall = stalledMs(now - leaseMs);
    const charged = recentStall < heartbeatMs;
    const cost = charged ? {} : { charged, controller_stalled_ms: Math.round(recentStall) };
    for (const worker of registry.markSilentDead(leaseMs, now, stalledMs)) {
      log.warn(
        { worker: worker.record.name, silent_ms: now - worker.last_seen, ...cost },
        'worker missed its heartbeats: marked dead',
      );
      const reason = `worker ${worker.record.name} stopped sending heartbeats`;
      jobs.releaseAll(worker.record.id, reason, charged, worker.waiting);
    }
    const overload: Overload = { graceMs: stalledMs, charged };
    const expired = jobs.expire(now, overload);
    if (expired.length > 0) log.warn({ jobs: expired.map((job) => job.id), ...cost }, 'leases expired: jobs requeued');
    const timedOut = jobs.timeOut(now);
    if (timedOut.length > 0)
      log.warn({ jobs: timedOut.map((job) => job.id) }, 'jobs ran past the job timeout: released as failed attempts');
    // not synced: releases and expiries are re-derived after a crash (leases are re-granted, then expire)
    void store
      .commit({ durable: false })
      .catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
  }

  const timer = setInterval(() => {
    const now = Date.now();
    measure(now);
    sweep(now);
  }, intervalMs);
  return {
    sweep,
    stalledMs,
    stop: () => clearInterval(timer),
  };
}
