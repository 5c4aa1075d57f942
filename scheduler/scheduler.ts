import { connectRpc, type RpcClient } from '../common/bus/index.js';
import { acceptedResultSchema, WORKER_METHODS, type AssignParams } from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import type { Controller, Job, LiveWorker } from '../controller/index.js';
import { canRun, scoreWorker } from './score.js';

const UNREACHABLE_PAUSE_MS = 2000;
const DECLINED_PAUSE_MS = 100;

export interface SchedulerConfig {
  /** How long a worker may take to accept an assignment before the job goes back to the queue. */
  assignTimeoutMs: number;
  /** Fallback pass interval: backoffs ending, workers freeing up between events. */
  tickMs: number;
}

export interface Scheduler {
  /** One placement pass now (also runs on every controller 'work' event). */
  schedule(): void;
  close(): void;
}

export function startScheduler(controller: Controller, config: SchedulerConfig, log: Logger): Scheduler {
  const clients = new Map<string, RpcClient>();
  let closed = false;

  function clientFor(worker: LiveWorker): RpcClient {
    let client = clients.get(worker.record.id);
    if (client && client.address !== worker.record.rpc_address) {
      client.close();
      client = undefined;
    }
    if (!client) {
      client = connectRpc(worker.record.rpc_address, config.assignTimeoutMs);
      clients.set(worker.record.id, client);
    }
    return client;
  }

  function dropStaleClients(): void {
    for (const [id, client] of clients) {
      const worker = controller.workers.get(id);
      if (!worker || worker.state === 'left') {
        client.close();
        clients.delete(id);
      }
    }
  }

  async function dispatch(worker: LiveWorker, job: Job, leaseId: string, filter: string): Promise<void> {
    const params: AssignParams = {
      token: worker.token,
      job_id: job.id,
      lease_id: leaseId,
      image_id: job.image_id,
      workload_id: job.workload_id,
      filter,
    };
    try {
      const { accepted } = await clientFor(worker).call(WORKER_METHODS.assign, params, acceptedResultSchema);
      if (accepted) {
        controller.jobs.start(job.id, worker.record.id, leaseId);
        log.debug({ job_id: job.id, worker: worker.record.name }, 'job running');
        return;
      }
      // its view of its free slots lags ours by one report: ask again after a short rest, not in a loop
      worker.resting_until = Date.now() + DECLINED_PAUSE_MS;
      log.debug({ job_id: job.id, worker: worker.record.name }, 'worker declined the job: back to the queue');
    } catch (error) {
      // not the job's fault: it goes back without losing an attempt, and the worker rests a while
      worker.resting_until = Date.now() + UNREACHABLE_PAUSE_MS;
      // assignments queued behind this one on the same socket fail fast instead of waiting out their timeouts
      clients.get(worker.record.id)?.close();
      clients.delete(worker.record.id);
      log.warn(
        {
          job_id: job.id,
          worker: worker.record.name,
          address: worker.record.rpc_address,
          error: error instanceof Error ? error.message : String(error),
        },
        'could not reach worker',
      );
    }
    controller.jobs.unassign(job.id, worker.record.id, leaseId);
  }

  function schedule(): void {
    if (closed) return;
    const now = Date.now();
    const free = new Map<LiveWorker, number>();
    for (const worker of controller.workers.alive()) {
      if (worker.resting_until > now) continue;
      const slots = worker.record.slots - controller.jobs.heldBy(worker.record.id).size;
      if (slots > 0) free.set(worker, slots);
    }
    if (free.size === 0) return;
    let placed = 0;
    for (const job of controller.jobs.ready(now)) {
      const workload = controller.store.data.workloads[job.workload_id];
      if (!workload) continue;
      let best: LiveWorker | null = null;
      let bestScore = -1;
      for (const [worker, slots] of free) {
        if (!canRun(worker, workload.filter, workload.tags)) continue;
        const score = scoreWorker(worker, slots);
        if (score > bestScore) {
          best = worker;
          bestScore = score;
        }
      }
      if (!best) continue; // no worker fits this workload now; later jobs may fit others
      const lease = controller.jobs.assign(job.id, best.record.id);
      if (!lease) continue;
      placed += 1;
      const left = free.get(best)! - 1;
      if (left > 0) free.set(best, left);
      else free.delete(best);
      void dispatch(best, job, lease.lease_id, workload.filter);
      if (free.size === 0) break;
    }
    if (placed > 0)
      void controller.store
        .commit()
        .catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
  }

  const onWork = (): void => schedule();
  controller.events.on('work', onWork);
  const ticker = setInterval(() => {
    dropStaleClients();
    schedule();
  }, config.tickMs);

  return {
    schedule,
    close() {
      closed = true;
      clearInterval(ticker);
      controller.events.off('work', onWork);
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
