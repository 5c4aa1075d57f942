// The scheduler's calls to a worker: the jobs one pass places on a worker that takes several at once go in one
// `assign_many` call; to one that does not, one `assign` each. A real REQ/REP socket pair on loopback; the
// scheduling port is a small stand-in that records what the scheduler asks of it.
import { expect } from 'chai';
import { method, serveRpc, type RpcServer } from '../../common/bus/index.js';
import { createLogger } from '../../common/log.js';
import { assignManyParamsSchema, assignParamsSchema, WORKER_METHODS } from '../../common/protocol.js';
import type { ReadyJob, SchedulingPort, WorkerCandidate } from '../../controller/index.js';
import { startScheduler, type Scheduler } from '../../scheduler/index.js';
import { freePorts } from '../helpers/ports.js';

const JOBS = ['j1', 'j2', 'j3'];

function readyJob(id: string): ReadyJob {
  const needs = { chain: false, operations: ['grayscale'], format: null, tags: [] };
  return {
    job_id: id,
    image_id: `i-${id}`,
    workload_id: 'w',
    filter: 'grayscale',
    operations: [{ op: 'grayscale' }],
    needs,
    width: 64,
    height: 64,
    tags: [],
  };
}

/** A port with one worker and these ready jobs (three by default); it records what the scheduler did. */
function standInPort(worker: WorkerCandidate, jobs = JOBS) {
  const done = { assigned: [] as string[], started: [] as string[], unassigned: [] as string[] };
  let queued = [...jobs];
  const port: SchedulingPort = {
    candidates: () => (queued.length > 0 ? [worker] : []),
    *ready() {
      yield* queued.map(readyJob);
    },
    assign(jobId) {
      done.assigned.push(jobId);
      queued = queued.filter((id) => id !== jobId);
      return { ok: true, lease_id: `lease-${jobId}` };
    },
    start(jobId) {
      done.started.push(jobId);
      return { ok: true };
    },
    unassign(jobId) {
      done.unassigned.push(jobId);
      return { ok: true };
    },
    rest: () => undefined,
    isGone: () => false,
    transfers: async () => ({ source: { via: 'api' }, target: { via: 'api' } }),
    commit: async () => undefined,
    onWork: () => () => undefined,
    onRevoked: () => () => undefined,
  };
  return { port, done };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('scheduler: several assignments in one call', function () {
  this.timeout(20_000);
  let rpc: RpcServer | null = null;
  let scheduler: Scheduler | null = null;
  const calls: Array<{ method: string; jobs: string[] }> = [];

  afterEach(() => {
    scheduler?.close();
    rpc?.close();
    calls.length = 0;
  });

  /** A worker's REP socket that declines j2 and takes the rest. */
  async function standInWorker(assignMany: boolean, slots = 3): Promise<WorkerCandidate> {
    const port = await freePorts(1);
    const accepts = (id: string): boolean => id !== 'j2';
    rpc = serveRpc(
      `tcp://127.0.0.1:${port}`,
      {
        [WORKER_METHODS.assign]: method(assignParamsSchema, (params) => {
          calls.push({ method: 'assign', jobs: [params.job_id] });
          return { accepted: accepts(params.job_id) };
        }),
        [WORKER_METHODS.assignMany]: method(assignManyParamsSchema, (params) => {
          calls.push({ method: 'assign_many', jobs: params.jobs.map((job) => job.job_id) });
          return { accepted: params.jobs.map((job) => accepts(job.job_id)) };
        }),
      },
      () => undefined,
    );
    return {
      id: 'w1',
      name: 'w1',
      token: 'token-of-w1',
      rpc_address: `tcp://127.0.0.1:${port}`,
      slots,
      free_slots: slots,
      tags: [],
      filters: ['grayscale'],
      chains: true,
      operations: ['grayscale'],
      formats: [],
      resources: { cpu_load: 0, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } },
      sees_images: false,
      assign_many: assignMany,
    };
  }

  it('sends the jobs of one pass to a worker that takes several in one assign_many call', async () => {
    const { port, done } = standInPort(await standInWorker(true));
    scheduler = startScheduler(port, { assignTimeoutMs: 2000, tickMs: 60_000 }, createLogger('test', 'silent'));
    scheduler.schedule();
    await until(() => done.started.length + done.unassigned.length === 3);
    expect(calls).to.deep.equal([{ method: 'assign_many', jobs: JOBS }]);
    expect(done.started, 'the ones it took run').to.deep.equal(['j1', 'j3']);
    expect(done.unassigned, 'the one it declined goes back').to.deep.equal(['j2']);
  });

  it('splits a pass of more jobs than one call carries into calls of at most 64', async () => {
    const many = Array.from({ length: 70 }, (_, index) => `m${index}`);
    const { port, done } = standInPort(await standInWorker(true, 100), many);
    scheduler = startScheduler(port, { assignTimeoutMs: 2000, tickMs: 60_000 }, createLogger('test', 'silent'));
    scheduler.schedule();
    await until(() => done.started.length + done.unassigned.length === 70);
    expect(calls.map((call) => [call.method, call.jobs.length])).to.deep.equal([
      ['assign_many', 64],
      ['assign_many', 6],
    ]);
    expect(done.started).to.have.length(70);
  });

  it('sends one assign per job to a worker that did not say it takes several', async () => {
    const { port, done } = standInPort(await standInWorker(false));
    scheduler = startScheduler(port, { assignTimeoutMs: 2000, tickMs: 60_000 }, createLogger('test', 'silent'));
    scheduler.schedule();
    await until(() => done.started.length + done.unassigned.length === 3);
    expect(calls.map((call) => call.method)).to.deep.equal(['assign', 'assign', 'assign']);
    expect(calls.flatMap((call) => call.jobs)).to.deep.equal(JOBS);
    expect([...done.started].sort()).to.deep.equal(['j1', 'j3']);
    expect(done.unassigned).to.deep.equal(['j2']);
  });
});
