import { connectRpc, type RpcClient } from '../common/bus/index.js';
import {
  acceptedManyResultSchema,
  acceptedResultSchema,
  MAX_ASSIGNMENTS_PER_CALL,
  WORKER_METHODS,
  type AssignManyParams,
  type AssignParams,
} from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import type { ReadyJob, RevokedLease, SchedulingPort, Transfers, WorkerCandidate } from '../controller/index.js';
import { placeJobs, type Placement } from './pass.js';

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

  /** The assignment of a placed job, with where its bytes go; null when the store could not presign (it goes back). */
  async function assignmentOf(worker: WorkerCandidate, job: ReadyJob, leaseId: string): Promise<AssignParams | null> {
    let transfers: Transfers;
    try {
      transfers = await port.transfers(job.job_id, worker, leaseId);
    } catch (error) {
      // the store could not presign (it says why in the log): the job goes back at no cost
      log.warn({ job_id: job.job_id, error: error instanceof Error ? error.message : String(error) }, 'no transfer');
      giveBack(job.job_id, worker.id, leaseId);
      return null;
    }
    return {
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
  }

  function giveBack(jobId: string, workerId: string, leaseId: string): void {
    const unassigned = port.unassign(jobId, workerId, leaseId);
    if (!unassigned.ok) log.debug({ job_id: jobId, reason: unassigned.refusal }, 'unassign refused');
  }

  /** The worker's answer to one assignment: running, or back to the queue at no cost. */
  function answered(worker: WorkerCandidate, assignment: AssignParams, accepted: boolean): void {
    const { job_id: jobId, lease_id: leaseId } = assignment;
    if (accepted) {
      const started = port.start(jobId, worker.id, leaseId);
      if (started.ok) log.debug({ job_id: jobId, worker: worker.name }, 'job running');
      else log.debug({ job_id: jobId, worker: worker.name, reason: started.refusal }, 'start refused');
      return;
    }
    log.debug({ job_id: jobId, worker: worker.name }, 'worker declined the job: back to the queue');
    giveBack(jobId, worker.id, leaseId);
  }

  /** The call failed: not the jobs' fault. They go back without losing an attempt, and the worker rests a while. */
  function unreachable(worker: WorkerCandidate, assignments: readonly AssignParams[], error: unknown): void {
    port.rest(worker.id, Date.now() + UNREACHABLE_PAUSE_MS);
    // assignments queued behind these on the same socket fail fast instead of waiting out their timeouts
    clients.get(worker.id)?.close();
    clients.delete(worker.id);
    log.warn(
      {
        job_id: assignments.map((assignment) => assignment.job_id).join(','),
        worker: worker.name,
        address: worker.rpc_address,
        error: error instanceof Error ? error.message : String(error),
      },
      'could not reach worker',
    );
    for (const { job_id, lease_id } of assignments) giveBack(job_id, worker.id, lease_id);
  }

  /** Sends a worker the jobs placed on it in one pass: one `assign` each, or one `assign_many` for all. */
  async function dispatch(worker: WorkerCandidate, placed: readonly Placement[]): Promise<void> {
    const built = await Promise.all(placed.map(({ job, lease_id }) => assignmentOf(worker, job, lease_id)));
    const assignments = built.filter((assignment): assignment is AssignParams => assignment !== null);
    if (assignments.length > 1 && worker.assign_many) {
      const calls: Promise<void>[] = [];
      for (let from = 0; from < assignments.length; from += MAX_ASSIGNMENTS_PER_CALL)
        calls.push(sendMany(worker, assignments.slice(from, from + MAX_ASSIGNMENTS_PER_CALL)));
      await Promise.all(calls);
    } else await Promise.all(assignments.map((assignment) => sendOne(worker, assignment)));
  }

  async function sendOne(worker: WorkerCandidate, assignment: AssignParams): Promise<void> {
    let accepted: boolean;
    try {
      ({ accepted } = await clientFor(worker).call(WORKER_METHODS.assign, assignment, acceptedResultSchema));
    } catch (error) {
      return unreachable(worker, [assignment], error);
    }
    answered(worker, assignment, accepted);
    if (!accepted) declined(worker);
  }

  async function sendMany(worker: WorkerCandidate, assignments: readonly AssignParams[]): Promise<void> {
    const params: AssignManyParams = {
      token: worker.token,
      jobs: assignments.map(({ token: _token, ...assignment }) => assignment),
    };
    let accepted: boolean[];
    try {
      ({ accepted } = await clientFor(worker).call(WORKER_METHODS.assignMany, params, acceptedManyResultSchema));
    } catch (error) {
      return unreachable(worker, assignments, error);
    }
    // an answer shorter than the call declines the rest
    let anyDeclined = false;
    for (const [index, assignment] of assignments.entries()) {
      const taken = accepted[index] === true;
      answered(worker, assignment, taken);
      anyDeclined ||= !taken;
    }
    if (anyDeclined) declined(worker);
  }

  /** Its view of its free slots lags ours by one report: ask again after a short rest, not in a loop. */
  function declined(worker: WorkerCandidate): void {
    port.rest(worker.id, Date.now() + DECLINED_PAUSE_MS);
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
    const byWorker = new Map<WorkerCandidate, Placement[]>();
    for (const placement of placements) {
      const placed = byWorker.get(placement.worker);
      if (placed) placed.push(placement);
      else byWorker.set(placement.worker, [placement]);
    }
    for (const [worker, placed] of byWorker) void dispatch(worker, placed);
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
