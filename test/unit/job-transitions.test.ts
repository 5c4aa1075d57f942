import { expect } from 'chai';
import {
  assignJob,
  completeJob,
  createJob,
  expireLease,
  failJob,
  holderRefusal,
  regrantLease,
  releaseJob,
  renewLease,
  requeueJob,
  retryJob,
  startJob,
  timeOutJob,
  unassignJob,
  type JobResult,
  type Refusal,
  type RetryPolicy,
  type Transition,
} from '../../controller/jobs/index.js';
import { emptyData, type Data, type Job } from '../../controller/store/schema.js';
import { applied, iso, leaseId, T0 } from './helpers.js';

const LEASE_MS = 10_000;
// backoff ceilings by attempt: 1000, 2000, then 3000 (the maximum)
const POLICY: RetryPolicy = { maxAttempts: 4, backoff: { baseMs: 1000, maxMs: 3000 } };
const ORIGINAL = 'original-1';

/** A datastore document with one workload and one queued job for its original, created at T0. */
function world(): { data: Data; job: Job } {
  const data = emptyData();
  data.workloads.wl = { id: 'wl', owner: 'ann', name: 'holiday', filter: 'blur', tags: [], created_at: iso(T0) };
  const job = createJob(data, 'wl', ORIGINAL, T0);
  return { data, job };
}

function result(overrides: Partial<JobResult> = {}): JobResult {
  return { id: 'filtered-1', type: 'filtered', source_image_id: ORIGINAL, ...overrides };
}

/** Asserts the transition is refused for this reason and changes nothing at all in the document. */
function expectRefused(data: Data, refusal: Refusal, run: () => Transition): void {
  const before = structuredClone(data);
  expect(run()).to.deep.equal({ ok: false, refusal });
  expect(data).to.deep.equal(before);
}

/** Assigns the job to the worker at `now`; returns the lease id. */
function assign(data: Data, jobId: string, workerId: string, now: number): string {
  return leaseId(applied(assignJob(data, jobId, workerId, LEASE_MS, now)));
}

/** Assigns and starts the job on the worker at `now`; returns the lease id. */
function run(data: Data, jobId: string, workerId: string, now: number): string {
  const lease = assign(data, jobId, workerId, now);
  applied(startJob(data, jobId, workerId, lease, LEASE_MS, now));
  return lease;
}

/**
 * Runs the job and has it fail (retryable) `count` times, from `now` on, each time as soon as its
 * backoff ends; returns when the last backoff ends.
 */
function failTimes(data: Data, jobId: string, count: number, from = T0): number {
  let now = from;
  for (let attempt = 0; attempt < count; attempt++) {
    const lease = run(data, jobId, 'w1', now);
    applied(failJob(data, jobId, 'w1', lease, `failure ${attempt + 1}`, true, POLICY, now));
    now = Math.max(now, data.jobs[jobId]!.not_before);
  }
  return now;
}

describe('job transitions', () => {
  describe('createJob', () => {
    it('queues a new job for the original: no attempt, lease, backoff, error or result yet', () => {
      const data = emptyData();
      const job = createJob(data, 'wl', ORIGINAL, T0);
      expect(data.jobs[job.id]).to.equal(job);
      expect(job).to.deep.equal({
        id: job.id,
        workload_id: 'wl',
        image_id: ORIGINAL,
        state: 'queued',
        attempts: 0,
        lease: null,
        not_before: 0,
        error: null,
        filtered_image_id: null,
        created_at: iso(T0),
        updated_at: iso(T0),
        started_at: null,
        finished_at: null,
      });
      expect(createJob(data, 'wl', 'original-2', T0).id).to.not.equal(job.id);
    });
  });

  describe('assignJob', () => {
    it('leases a queued job to the worker for one lease period and counts one attempt', () => {
      const { data, job } = world();
      const after = applied(assignJob(data, job.id, 'w1', LEASE_MS, T0 + 100));
      expect(after).to.include({ state: 'assigned', attempts: 1, updated_at: iso(T0 + 100) });
      expect(after.lease).to.include({ worker_id: 'w1', expires_at: T0 + 100 + LEASE_MS });
      expect(after.lease?.lease_id).to.be.a('string').and.not.equal('');
    });

    it('gives each assignment a new lease id, even to the same worker', () => {
      const { data, job } = world();
      const first = assign(data, job.id, 'w1', T0);
      applied(unassignJob(data, job.id, 'w1', first, T0 + 1));
      expect(assign(data, job.id, 'w1', T0 + 2)).to.not.equal(first);
    });

    it('refuses an unknown job (no_job), "__proto__" included', () => {
      const { data } = world();
      expectRefused(data, 'no_job', () => assignJob(data, 'nope', 'w1', LEASE_MS, T0));
      expectRefused(data, 'no_job', () => assignJob(data, '__proto__', 'w1', LEASE_MS, T0));
    });

    it('refuses a job that is not queued (wrong_state): assigned, running or done', () => {
      const { data, job } = world();
      const lease = assign(data, job.id, 'w1', T0);
      expectRefused(data, 'wrong_state', () => assignJob(data, job.id, 'w2', LEASE_MS, T0 + 1));
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 2));
      expectRefused(data, 'wrong_state', () => assignJob(data, job.id, 'w2', LEASE_MS, T0 + 3));
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 4));
      expectRefused(data, 'wrong_state', () => assignJob(data, job.id, 'w2', LEASE_MS, T0 + 5));
    });

    it('refuses a queued job until its backoff has passed (in_backoff), and takes it from then on', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, 1);
      expectRefused(data, 'in_backoff', () => assignJob(data, job.id, 'w1', LEASE_MS, readyAt - 1));
      expect(applied(assignJob(data, job.id, 'w1', LEASE_MS, readyAt)).state).to.equal('assigned');
    });
  });

  describe('startJob', () => {
    it('runs the assigned job under the same lease, which now runs one period from the start', () => {
      const { data, job } = world();
      const lease = assign(data, job.id, 'w1', T0);
      const after = applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 700));
      expect(after).to.include({ state: 'running', attempts: 1, updated_at: iso(T0 + 700), started_at: iso(T0 + 700) });
      expect(after.lease).to.deep.equal({ worker_id: 'w1', lease_id: lease, expires_at: T0 + 700 + LEASE_MS });
    });

    it('refuses an unknown job (no_job), another worker or lease (lease_moved), a second start (wrong_state)', () => {
      const { data, job } = world();
      const lease = assign(data, job.id, 'w1', T0);
      expectRefused(data, 'no_job', () => startJob(data, 'nope', 'w1', lease, LEASE_MS, T0));
      expectRefused(data, 'lease_moved', () => startJob(data, job.id, 'w2', lease, LEASE_MS, T0));
      expectRefused(data, 'lease_moved', () => startJob(data, job.id, 'w1', 'other-lease', LEASE_MS, T0));
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 1));
      expectRefused(data, 'wrong_state', () => startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 2));
    });
  });

  describe('renewLease', () => {
    it("moves the lease's expiry to one period from now, never earlier, and is not a change of state", () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const after = applied(renewLease(data, job.id, 'w1', lease, LEASE_MS, T0 + 4000));
      expect(after.lease).to.deep.equal({ worker_id: 'w1', lease_id: lease, expires_at: T0 + 4000 + LEASE_MS });
      expect(after).to.include({ state: 'running', updated_at: iso(T0) });
      // a renewal that arrives late (its now is older) does not shorten the lease
      applied(renewLease(data, job.id, 'w1', lease, LEASE_MS, T0 + 1000));
      expect(data.jobs[job.id]!.lease?.expires_at).to.equal(T0 + 4000 + LEASE_MS);
    });

    it('refuses an unknown job (no_job), and a worker that does not hold the lease (lease_moved)', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      expectRefused(data, 'no_job', () => renewLease(data, 'nope', 'w1', lease, LEASE_MS, T0 + 1));
      expectRefused(data, 'lease_moved', () => renewLease(data, job.id, 'w2', lease, LEASE_MS, T0 + 1));
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 2));
      expectRefused(data, 'lease_moved', () => renewLease(data, job.id, 'w1', lease, LEASE_MS, T0 + 3));
    });
  });

  describe('regrantLease (after a restart)', () => {
    it('gives a held lease one more period from now, and keeps a later expiry', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const restartedAt = T0 + 60_000;
      const after = applied(regrantLease(data.jobs[job.id]!, LEASE_MS, restartedAt));
      expect(after.lease).to.deep.equal({ worker_id: 'w1', lease_id: lease, expires_at: restartedAt + LEASE_MS });
      applied(regrantLease(data.jobs[job.id]!, LEASE_MS, T0));
      expect(data.jobs[job.id]!.lease?.expires_at).to.equal(restartedAt + LEASE_MS);
    });

    it('refuses a job that holds no lease (wrong_state)', () => {
      const { data, job } = world();
      expectRefused(data, 'wrong_state', () => regrantLease(data.jobs[job.id]!, LEASE_MS, T0));
    });
  });

  describe('completeJob', () => {
    it('marks the job done with its filtered image, frees the lease and clears the last error', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, 1);
      const lease = run(data, job.id, 'w1', readyAt);
      const after = applied(completeJob(data, job.id, 'w1', lease, result(), readyAt + 300));
      expect(after).to.deep.include({
        state: 'done',
        lease: null,
        attempts: 2,
        error: null,
        filtered_image_id: 'filtered-1',
        updated_at: iso(readyAt + 300),
        finished_at: iso(readyAt + 300),
      });
    });

    it('completes a job still assigned (the worker finished before its start was recorded)', () => {
      const { data, job } = world();
      const lease = assign(data, job.id, 'w1', T0);
      expect(applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 1)).state).to.equal('done');
    });

    it('refuses an unknown job (no_job), a non-holder (lease_moved) and a second completion (lease_moved)', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      expectRefused(data, 'no_job', () => completeJob(data, 'nope', 'w1', lease, result(), T0 + 1));
      expectRefused(data, 'lease_moved', () => completeJob(data, job.id, 'w2', lease, result(), T0 + 1));
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 2));
      expectRefused(data, 'lease_moved', () => completeJob(data, job.id, 'w1', lease, result(), T0 + 3));
    });

    it("refuses a result that is not a filtered image of the job's own original (wrong_result)", () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const wrong = [
        result({ type: 'original' }),
        result({ source_image_id: 'original-2' }),
        result({ source_image_id: null }),
      ];
      for (const bad of wrong)
        expectRefused(data, 'wrong_result', () => completeJob(data, job.id, 'w1', lease, bad, T0 + 1));
    });
  });

  describe('failJob', () => {
    it('sends a retryable failure back to the queue after a backoff within the policy bounds', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const after = applied(failJob(data, job.id, 'w1', lease, 'decoder crashed', true, POLICY, T0 + 200));
      expect(after).to.include({
        state: 'queued',
        lease: null,
        attempts: 1,
        error: 'decoder crashed',
        finished_at: null,
        updated_at: iso(T0 + 200),
      });
      expect(after.not_before).to.be.within(T0 + 200 + 500, T0 + 200 + 1000);
    });

    it('waits longer after each failed attempt, up to the policy maximum', () => {
      // the ceilings of attempts 1 to 3: 1000, 2000, then 4000 capped at 3000
      const bounds = [
        [500, 1000],
        [1000, 2000],
        [1500, 3000],
      ] as const;
      for (let trial = 0; trial < 20; trial++) {
        const { data, job } = world();
        let failedAt = T0;
        for (const [shortest, longest] of bounds) {
          const readyAt = failTimes(data, job.id, 1, failedAt);
          expect(readyAt - failedAt).to.be.within(shortest, longest);
          failedAt = readyAt;
        }
      }
    });

    it('fails a poison input (not retryable) for good at its first attempt, with its error', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const after = applied(failJob(data, job.id, 'w1', lease, 'not an image', false, POLICY, T0 + 10));
      expect(after).to.include({
        state: 'failed',
        lease: null,
        attempts: 1,
        not_before: 0,
        error: 'not an image',
        finished_at: iso(T0 + 10),
        updated_at: iso(T0 + 10),
      });
    });

    it('fails the job for good when its last attempt fails, even if retryable', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, POLICY.maxAttempts - 1);
      const lease = run(data, job.id, 'w1', readyAt);
      const after = applied(failJob(data, job.id, 'w1', lease, 'out of memory', true, POLICY, readyAt + 1));
      expect(after).to.include({
        state: 'failed',
        lease: null,
        attempts: POLICY.maxAttempts,
        error: 'out of memory',
        finished_at: iso(readyAt + 1),
      });
    });

    it('refuses an unknown job (no_job), a non-holder (lease_moved) and a second report (lease_moved)', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      expectRefused(data, 'no_job', () => failJob(data, 'nope', 'w1', lease, 'x', true, POLICY, T0 + 1));
      expectRefused(data, 'lease_moved', () => failJob(data, job.id, 'w2', lease, 'x', true, POLICY, T0 + 1));
      applied(failJob(data, job.id, 'w1', lease, 'x', false, POLICY, T0 + 2));
      expectRefused(data, 'lease_moved', () => failJob(data, job.id, 'w1', lease, 'x', false, POLICY, T0 + 3));
    });
  });

  describe('releaseJob', () => {
    it('puts back a job its worker never started at no cost: the job is as before its assignment', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, 1);
      const before = structuredClone(data.jobs[job.id]!);
      const lease = assign(data, job.id, 'w1', readyAt);
      const after = applied(releaseJob(data, job.id, 'w1', lease, 'worker left', POLICY, readyAt + 5));
      expect(after).to.deep.equal({ ...before, updated_at: iso(readyAt + 5) });
    });

    it('counts a started job as a failed attempt: back to the queue after a backoff, with the reason', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const after = applied(releaseJob(data, job.id, 'w1', lease, 'worker died', POLICY, T0 + 5));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 1, error: 'worker died' });
      expect(after.not_before).to.be.within(T0 + 5 + 500, T0 + 5 + 1000);
    });

    it('fails a started job for good when it was its last attempt', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, POLICY.maxAttempts - 1);
      const lease = run(data, job.id, 'w1', readyAt);
      const after = applied(releaseJob(data, job.id, 'w1', lease, 'worker died', POLICY, readyAt + 5));
      expect(after).to.include({ state: 'failed', error: 'worker died', finished_at: iso(readyAt + 5) });
    });

    it('refuses an unknown job (no_job), and a non-holder of an assigned or running job (lease_moved)', () => {
      const { data, job } = world();
      expectRefused(data, 'no_job', () => releaseJob(data, 'nope', 'w1', 'lease', 'gone', POLICY, T0));
      const lease = assign(data, job.id, 'w1', T0);
      expectRefused(data, 'lease_moved', () => releaseJob(data, job.id, 'w2', lease, 'gone', POLICY, T0 + 1));
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 2));
      expectRefused(data, 'lease_moved', () => releaseJob(data, job.id, 'w1', 'old', 'gone', POLICY, T0 + 3));
    });
  });

  describe('unassignJob', () => {
    it('puts an assigned job back in the queue as if never assigned: the attempt is given back', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, 1);
      const lease = assign(data, job.id, 'w1', readyAt);
      expect(data.jobs[job.id]!.attempts).to.equal(2);
      const after = applied(unassignJob(data, job.id, 'w1', lease, readyAt + 1));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 1, updated_at: iso(readyAt + 1) });
    });

    it('refuses an unknown job (no_job), a non-holder (lease_moved) and a job already started (wrong_state)', () => {
      const { data, job } = world();
      const lease = assign(data, job.id, 'w1', T0);
      expectRefused(data, 'no_job', () => unassignJob(data, 'nope', 'w1', lease, T0 + 1));
      expectRefused(data, 'lease_moved', () => unassignJob(data, job.id, 'w2', lease, T0 + 1));
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0 + 2));
      expectRefused(data, 'wrong_state', () => unassignJob(data, job.id, 'w1', lease, T0 + 3));
    });
  });

  describe('expireLease', () => {
    it('releases a running job whose lease has run out as a failed attempt that names the worker', () => {
      const { data, job } = world();
      run(data, job.id, 'w1', T0);
      const after = applied(expireLease(data, job.id, POLICY, T0 + LEASE_MS));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 1 });
      expect(after.error).to.equal('lease expired: worker w1 stopped renewing it');
      expect(after.not_before).to.be.within(T0 + LEASE_MS + 500, T0 + LEASE_MS + 1000);
    });

    it('puts back an assigned job whose lease has run out at no cost', () => {
      const { data, job } = world();
      assign(data, job.id, 'w1', T0);
      const after = applied(expireLease(data, job.id, POLICY, T0 + LEASE_MS + 1));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 0, not_before: 0, error: null });
    });

    it('refuses an unknown job (no_job), a job with no lease (wrong_state) and a live lease (lease_live)', () => {
      const { data, job } = world();
      expectRefused(data, 'no_job', () => expireLease(data, 'nope', POLICY, T0));
      expectRefused(data, 'wrong_state', () => expireLease(data, job.id, POLICY, T0 + LEASE_MS * 10));
      run(data, job.id, 'w1', T0);
      expectRefused(data, 'lease_live', () => expireLease(data, job.id, POLICY, T0 + LEASE_MS - 1));
    });
  });

  describe('requeueJob (a release the controller caused: it was overloaded)', () => {
    it('puts a running job back in the queue with its attempt given back, no backoff, and the reason', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const after = applied(requeueJob(data, job.id, 'w1', lease, 'controller overloaded', T0 + 1));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 0, not_before: 0 });
      expect(after.error).to.equal('controller overloaded');
    });

    it('refuses an unknown job (no_job), a non-holder (lease_moved) and a finished job', () => {
      const { data, job } = world();
      expectRefused(data, 'no_job', () => requeueJob(data, 'nope', 'w1', 'l', 'r', T0));
      const lease = run(data, job.id, 'w1', T0);
      expectRefused(data, 'lease_moved', () => requeueJob(data, job.id, 'w2', lease, 'r', T0));
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 1));
      expectRefused(data, 'lease_moved', () => requeueJob(data, job.id, 'w1', lease, 'r', T0 + 2));
    });

    it('releaseJob and expireLease with charged false requeue a started job at no cost', () => {
      const { data, job } = world();
      let lease = run(data, job.id, 'w1', T0);
      applied(releaseJob(data, job.id, 'w1', lease, 'stalled', POLICY, T0 + 1, false));
      expect(data.jobs[job.id]).to.include({ state: 'queued', attempts: 0, not_before: 0 });
      lease = run(data, job.id, 'w1', T0 + 2);
      // the grace moves the expiry later
      expectRefused(data, 'lease_live', () => expireLease(data, job.id, POLICY, T0 + 2 + LEASE_MS, 500, false));
      applied(expireLease(data, job.id, POLICY, T0 + 2 + LEASE_MS + 500, 500, false));
      expect(data.jobs[job.id]).to.include({ state: 'queued', attempts: 0, not_before: 0 });
      expect(lease).to.be.a('string');
    });
  });

  describe('timeOutJob', () => {
    const TIMEOUT_MS = 60_000;

    it('releases a job running for the job timeout as a failed attempt, however often its lease was renewed', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      for (let at = T0 + 1000; at < T0 + TIMEOUT_MS; at += 1000)
        applied(renewLease(data, job.id, 'w1', lease, LEASE_MS, at));
      const after = applied(timeOutJob(data, job.id, TIMEOUT_MS, POLICY, T0 + TIMEOUT_MS));
      expect(after).to.include({ state: 'queued', lease: null, attempts: 1, updated_at: iso(T0 + TIMEOUT_MS) });
      expect(after.error).to.equal(
        'ran too long: still running 1m after worker w1 started it (job timeout 1m, --job-timeout)',
      );
      expect(after.not_before).to.be.within(T0 + TIMEOUT_MS + 500, T0 + TIMEOUT_MS + 1000);
    });

    it('counts the run from its start, not from the assignment, and fails the job after its last attempt', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, POLICY.maxAttempts - 1);
      const lease = assign(data, job.id, 'w1', readyAt);
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, readyAt + 2000));
      expectRefused(data, 'in_time', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, readyAt + TIMEOUT_MS));
      const after = applied(timeOutJob(data, job.id, TIMEOUT_MS, POLICY, readyAt + 2000 + TIMEOUT_MS + 500));
      expect(after).to.include({ state: 'failed', lease: null, attempts: POLICY.maxAttempts });
      expect(after.error).to.match(/^ran too long: still running 1m after worker w1 started it/);
      expect(after.finished_at).to.equal(iso(readyAt + 2000 + TIMEOUT_MS + 500));
    });

    it('times out a running job of a datastore written before started_at existed, from its updated_at', () => {
      const { data, job } = world();
      run(data, job.id, 'w1', T0);
      // a record from before the field: no started_at at all
      delete (data.jobs[job.id] as Partial<Job>).started_at;
      expectRefused(data, 'in_time', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, T0 + TIMEOUT_MS - 1));
      expect(applied(timeOutJob(data, job.id, TIMEOUT_MS, POLICY, T0 + TIMEOUT_MS)).state).to.equal('queued');
    });

    it('refuses an unknown job (no_job), a job that is not running (wrong_state), and a run in time (in_time)', () => {
      const { data, job } = world();
      const late = T0 + TIMEOUT_MS * 10;
      expectRefused(data, 'no_job', () => timeOutJob(data, 'nope', TIMEOUT_MS, POLICY, late));
      expectRefused(data, 'no_job', () => timeOutJob(data, '__proto__', TIMEOUT_MS, POLICY, late));
      // queued, then assigned (not started: the worker has not accepted it)
      expectRefused(data, 'wrong_state', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, late));
      const lease = assign(data, job.id, 'w1', T0);
      expectRefused(data, 'wrong_state', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, late));
      applied(startJob(data, job.id, 'w1', lease, LEASE_MS, T0));
      expectRefused(data, 'in_time', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, T0 + TIMEOUT_MS - 1));
      // done (and failed) jobs are finished: nothing to time out
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 1));
      expectRefused(data, 'wrong_state', () => timeOutJob(data, job.id, TIMEOUT_MS, POLICY, late));
    });
  });

  describe('retryJob', () => {
    it('sends a failed job back to the queue with fresh attempts, no backoff and no error', () => {
      const { data, job } = world();
      const readyAt = failTimes(data, job.id, POLICY.maxAttempts - 1);
      const lease = run(data, job.id, 'w1', readyAt);
      applied(failJob(data, job.id, 'w1', lease, 'boom', true, POLICY, readyAt + 1));
      const after = applied(retryJob(data, job.id, readyAt + 2));
      expect(after).to.include({
        state: 'queued',
        attempts: 0,
        lease: null,
        not_before: 0,
        error: null,
        started_at: null,
        finished_at: null,
        updated_at: iso(readyAt + 2),
      });
      expect(applied(assignJob(data, job.id, 'w1', LEASE_MS, readyAt + 2)).attempts).to.equal(1);
    });

    it('refuses an unknown job (no_job) and a job that has not failed (wrong_state)', () => {
      const { data, job } = world();
      expectRefused(data, 'no_job', () => retryJob(data, 'nope', T0));
      expectRefused(data, 'wrong_state', () => retryJob(data, job.id, T0));
      const lease = run(data, job.id, 'w1', T0);
      expectRefused(data, 'wrong_state', () => retryJob(data, job.id, T0 + 1));
      applied(completeJob(data, job.id, 'w1', lease, result(), T0 + 2));
      expectRefused(data, 'wrong_state', () => retryJob(data, job.id, T0 + 3));
    });
  });

  describe('holderRefusal', () => {
    it('lets only the current holder move a job, from the states asked for', () => {
      const { data, job } = world();
      const lease = run(data, job.id, 'w1', T0);
      const current = data.jobs[job.id]!;
      expect(holderRefusal(current, 'w1', lease)).to.equal(null);
      expect(holderRefusal(undefined, 'w1', lease)).to.equal('no_job');
      expect(holderRefusal(current, 'w2', lease)).to.equal('lease_moved');
      expect(holderRefusal(current, 'w1', 'other')).to.equal('lease_moved');
      expect(holderRefusal(current, 'w1', lease, ['assigned'])).to.equal('wrong_state');
    });
  });

  describe('a stale holder (an old lease id after a re-assignment)', () => {
    it('can neither start, renew, complete, fail, release nor unassign the job', () => {
      const { data, job } = world();
      const old = assign(data, job.id, 'w1', T0);
      applied(expireLease(data, job.id, POLICY, T0 + LEASE_MS));
      // re-assigned, to another worker and then back to the same one: each time under a new lease
      for (const [holder, at] of [
        ['w2', T0 + LEASE_MS + 1],
        ['w1', T0 + 3 * LEASE_MS],
      ] as const) {
        const current = assign(data, job.id, holder, at);
        for (const state of ['assigned', 'running'] as const) {
          expect(data.jobs[job.id]!.state).to.equal(state);
          const later = at + 10;
          expectRefused(data, 'lease_moved', () => startJob(data, job.id, 'w1', old, LEASE_MS, later));
          expectRefused(data, 'lease_moved', () => renewLease(data, job.id, 'w1', old, LEASE_MS, later));
          expectRefused(data, 'lease_moved', () => completeJob(data, job.id, 'w1', old, result(), later));
          expectRefused(data, 'lease_moved', () => failJob(data, job.id, 'w1', old, 'x', false, POLICY, later));
          expectRefused(data, 'lease_moved', () => releaseJob(data, job.id, 'w1', old, 'x', POLICY, later));
          expectRefused(data, 'lease_moved', () => unassignJob(data, job.id, 'w1', old, later));
          if (state === 'assigned') applied(startJob(data, job.id, holder, current, LEASE_MS, at + 1));
        }
        applied(releaseJob(data, job.id, holder, current, 'worker left', POLICY, at + 20));
      }
    });
  });
});
