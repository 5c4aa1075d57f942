import { connectRpc, type RpcClient } from '../common/bus/index.js';
import { acceptedResultSchema, WORKER_METHODS, type AssignParams } from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import type { ReadyJob, RevokedLease, SchedulingPort, Transfers, WorkerCandidate } from '../controller/index.js';
import { placeJobs } from './pass.js';

const UNREACHABLE_PAUSE_MS = 2000;
const DECLINED_PAUSE_MS = 100;

export interface SchedulerConfig {
  /** How long a worker may take to accept an assignment before the job goes back to the queue. */
  assignTimeoutMs: number;
  /** Fallback pass interval: backoffs ending, workers freeing up between events. */
  tickMs: number;
}

export interface Scheduler {
  /** One placement pass now (also runs whenever the port says work may be placed). */
  schedule(): void;
  close(): void;
}

export function startScheduler(port: SchedulingPort, config: SchedulerConfig, log: Logger): Scheduler {
  const clients = new Map<string, RpcClient>();
  let closed = false;

  function clientFor(worker: Pick<WorkerCandidate, 'id' | 'rpc_address'>): RpcClient {
    let client = clients.get(worker.id);
    if (client && client.address !== worker.rpc_address) {
      client.close();
      client = undefined;
    }
    if (!client) {
      client = connectRpc(worker.rpc_address, config.assignTimeoutMs);
      clients.set(worker.id, client);
    }
    return client;
  }

  function dropStaleClients(): void {
    for (const [id, client] of clients) {
      if (!port.isGone(id)) continue;
      client.close();
      clients.delete(id);
    }
  }

  async function dispatch(worker: WorkerCandidate, job: ReadyJob, leaseId: string): Promise<void> {
    let transfers: Transfers;
    try {
      transfers = await port.transfers(job.job_id, worker, leaseId);
    } catch (error) {
      // the store could not presign (it says why in the log): the job goes back at no cost
      log.warn({ job_id: job.job_id, error: error instanceof Error ? error.message : String(error) }, 'no transfer');
      const unassigned = port.unassign(job.job_id, worker.id, leaseId);
      if (!unassigned.ok) log.debug({ job_id: job.job_id, reason: unassigned.refusal }, 'unassign refused');
      return;
    }
    const params: AssignParams = {
      token: worker.token,
      job_id: job.job_id,
      lease_id: leaseId,
      image_id: job.image_id,
      workload_id: job.workload_id,
      ...(job.filter === null ? {} : { filter: job.filter }),
      operations: job.operations,
      ...(job.width > 0 && job.height > 0 ? { width: job.width, height: job.height } : {}),
      ...transfers,
    };
    try {
      const { accepted } = await clientFor(worker).call(WORKER_METHODS.assign, params, acceptedResultSchema);
      if (accepted) {
        const started = port.start(job.job_id, worker.id, leaseId);
        if (started.ok) log.debug({ job_id: job.job_id, worker: worker.name }, 'job running');
        else log.debug({ job_id: job.job_id, worker: worker.name, reason: started.refusal }, 'start refused');
        return;
      }
      // its view of its free slots lags ours by one report: ask again after a short rest, not in a loop
      port.rest(worker.id, Date.now() + DECLINED_PAUSE_MS);
      log.debug({ job_id: job.job_id, worker: worker.name }, 'worker declined the job: back to the queue');
    } catch (error) {
      // not the job's fault: it goes back without losing an attempt, and the worker rests a while
      port.rest(worker.id, Date.now() + UNREACHABLE_PAUSE_MS);
      // assignments queued behind this one on the same socket fail fast instead of waiting out their timeouts
      clients.get(worker.id)?.close();
      clients.delete(worker.id);
      log.warn(
        {
          job_id: job.job_id,
          worker: worker.name,
          address: worker.rpc_address,
          error: error instanceof Error ? error.message : String(error),
        },
        'could not reach worker',
      );
    }
    const unassigned = port.unassign(job.job_id, worker.id, leaseId);
    if (!unassigned.ok) log.debug({ job_id: job.job_id, reason: unassigned.refusal }, 'unassign refused');
  }

  /** The job's owner cancelled it: the worker that held it is asked to stop (its next heartbeat would tell it too). */
  async function stopRevoked({ job_id, worker }: RevokedLease): Promise<void> {
    try {
      const { accepted } = await clientFor(worker).call(
        WORKER_METHODS.cancel,
        { token: worker.token, job_id },
        acceptedResultSchema,
      );
      log.debug({ job_id, worker: worker.name, stopped: accepted }, 'asked the worker to stop a cancelled job');
    } catch (error) {
      log.debug(
        { job_id, worker: worker.name, error: error instanceof Error ? error.message : String(error) },
        'could not ask the worker to stop a cancelled job: its next heartbeat tells it',
      );
    }
  }

  function schedule(): void {
    if (closed) return;
    const placements = placeJobs(port, Date.now());
    for (const { worker, job, lease_id } of placements) void dispatch(worker, job, lease_id);
    if (placements.length > 0) {
      port.commit().catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
    }
  }

  const stopListening = port.onWork(() => schedule());
  const stopRevokes = port.onRevoked((revoked) => void stopRevoked(revoked));
  const ticker = setInterval(() => {
    dropStaleClients();
    schedule();
  }, config.tickMs);

  return {
    schedule,
    close() {
      closed = true;
      clearInterval(ticker);
      stopListening();
      stopRevokes();
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
