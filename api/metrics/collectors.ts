import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  JOB_STATES,
  type Controller,
  type JobChange,
  type JobRefusal,
  type LiveWorker,
} from '../../controller/index.js';

const WORKER_STATES = ['alive', 'dead'] as const;
// seconds: a small image takes milliseconds, a large one on a busy worker tens of seconds
const JOB_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface SystemMetrics {
  readonly registry: Registry;
  close(): void;
}

/** The parts of the controller the metrics read. */
export type MetricsSource = Pick<Controller, 'store' | 'jobs' | 'images' | 'workers' | 'events' | 'lifecycle'>;

/**
 * The system's metrics, read from the controller. What the controller keeps counted as it changes (jobs
 * by state, images and bytes by type, workloads) and what the registry knows (workers) is read when
 * Prometheus scrapes, so a scrape costs the same however long the history; what is an event (a job
 * ran, a job waited) is observed from the controller's `job` events as it happens.
 */
export function systemMetrics(controller: MetricsSource, registry: Registry): SystemMetrics {
  const { store } = controller;
  // the event loop's delay sampled every 100 ms, not prom-client's 10: its timer woke an idle server 100
  // times a second (5-10 ms of CPU a second idle), for percentiles no one reads at that grain
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

  new Gauge({
    name: 'dpip_jobs',
    help: 'Jobs by state (one job per uploaded original)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = controller.jobs.tally.counts();
      for (const state of JOB_STATES) this.set({ state }, counts[state]);
    },
  });

  // what was ever stored (kept now, plus deleted since the start) only grows: counters; what is kept: gauges
  const imageCounter = (name: string, help: string, field: 'images' | 'bytes'): void => {
    new Counter({
      name,
      help,
      labelNames: ['type'],
      registers: [registry],
      collect() {
        this.reset();
        const removed = controller.images.removedTotals();
        for (const [type, totals] of Object.entries(controller.images.totals()))
          this.inc({ type }, totals[field] + removed[type as keyof typeof removed][field]);
      },
    });
  };
  const imageGauge = (name: string, help: string, field: 'images' | 'bytes'): void => {
    new Gauge({
      name,
      help,
      labelNames: ['type'],
      registers: [registry],
      collect() {
        for (const [type, totals] of Object.entries(controller.images.totals())) this.set({ type }, totals[field]);
      },
    });
  };
  imageGauge('dpip_images', 'Images kept now, by type', 'images');
  imageGauge('dpip_image_bytes', 'Bytes of the images kept now, by type', 'bytes');
  const deletedCounter = (name: string, help: string, field: 'workloads' | 'images' | 'bytes'): void => {
    new Counter({
      name,
      help,
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [reason, totals] of Object.entries(controller.lifecycle.totals()))
          this.inc({ reason }, totals[field]);
      },
    });
  };
  deletedCounter(
    'dpip_deleted_workloads_total',
    'Workloads deleted, by reason: user (DELETE /workloads/{id}) or retention (--retention)',
    'workloads',
  );
  deletedCounter('dpip_deleted_images_total', 'Images deleted (with their workload, or alone), by reason', 'images');
  deletedCounter('dpip_freed_bytes_total', 'Bytes of the images deleted, by reason', 'bytes');
  imageCounter(
    'dpip_uploads_total',
    'Images stored: originals uploaded by users, filtered images uploaded by workers',
    'images',
  );
  imageCounter('dpip_upload_bytes_total', 'Bytes of the images stored, by type', 'bytes');
  new Gauge({
    name: 'dpip_leftover_removals',
    help: 'Deletions whose files could not be removed yet (the image store down, a busy folder): retried until gone',
    registers: [registry],
    collect() {
      this.set(controller.lifecycle.leftoverRemovals);
    },
  });
  new Gauge({
    name: 'dpip_workloads',
    help: 'Workloads kept now',
    registers: [registry],
    collect() {
      this.set(store.workloadIndex.size);
    },
  });

  new Gauge({
    name: 'dpip_workers',
    help: 'Workers the controller knows, by state (dead: silent for longer than the lease)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const state of WORKER_STATES)
        this.set({ state }, controller.workers.all().filter((worker) => worker.state === state).length);
    },
  });
  const perWorker = (name: string, help: string, value: (worker: LiveWorker) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['worker'],
      registers: [registry],
      collect() {
        this.reset(); // a worker that left is gone from the next scrape
        for (const worker of controller.workers.all()) this.set({ worker: worker.record.name }, value(worker));
      },
    });
  };
  perWorker(
    'dpip_worker_cpu_load_percent',
    "CPU load of the worker's machine at its last heartbeat (percent)",
    (worker) => worker.resources.cpu_load,
  );
  perWorker(
    'dpip_worker_memory_used_ratio',
    "Memory in use on the worker's machine at its last heartbeat (0 to 1)",
    (worker) => 1 - worker.resources.mem_free / worker.resources.mem_total,
  );
  perWorker('dpip_worker_slots', 'Jobs the worker runs at once', (worker) => worker.record.slots);
  perWorker(
    'dpip_worker_running_jobs',
    'Jobs the worker holds now',
    (worker) => controller.jobs.heldBy(worker.record.id).size,
  );

  const duration = new Histogram({
    name: 'dpip_job_duration_seconds',
    help: 'Time a worker spent on a job, from assignment or start to its result',
    labelNames: ['outcome'],
    buckets: JOB_SECONDS,
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: 'dpip_job_queue_wait_seconds',
    help: 'Time a job waited in the queue (backoff included) before it was assigned',
    buckets: JOB_SECONDS,
    registers: [registry],
  });
  const finished = new Counter({
    name: 'dpip_jobs_finished_total',
    help: 'Jobs that reached done or failed (a retried job can finish again)',
    labelNames: ['state'],
    registers: [registry],
  });
  const retried = new Counter({
    name: 'dpip_jobs_retried_total',
    help: 'Failed jobs requeued by their owner',
    registers: [registry],
  });

  const onJob = ({ job, from, since }: JobChange): void => {
    const seconds = Math.max(0, Date.now() - since) / 1000;
    if (from === 'queued' && job.state === 'assigned') queueWait.observe(seconds);
    // a job run ends in a result (done or failed) or goes back to the queue; an unassigned job never ran
    if (from === 'running' || (from === 'assigned' && (job.state === 'done' || job.state === 'failed'))) {
      duration.observe({ outcome: job.state === 'queued' ? 'requeued' : job.state }, seconds);
    }
    if (job.state === 'done' || job.state === 'failed') finished.inc({ state: job.state });
    if (from === 'failed' && job.state === 'queued') retried.inc();
  };
  controller.events.on('job', onJob);

  const refused = new Counter({
    name: 'dpip_job_transitions_refused_total',
    help: 'Job transitions that changed nothing (a late worker, a lease that moved on, a second request), by reason',
    labelNames: ['transition', 'reason'],
    registers: [registry],
  });
  const onRefused = ({ transition, refusal }: JobRefusal): void => refused.inc({ transition, reason: refusal });
  controller.events.on('refused', onRefused);

  return {
    registry,
    close() {
      controller.events.off('job', onJob);
      controller.events.off('refused', onRefused);
    },
  };
}
