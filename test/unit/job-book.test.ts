import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { JobBook, type JobChange, type JobRefusal } from '../../controller/job-book.js';
import type { JobResult, RetryPolicy } from '../../controller/jobs/index.js';
import { openStore, type Job, type Store } from '../../controller/store/index.js';
import { applied, iso, leaseId, T0, tempDir, type TempDir } from './helpers.js';

const LEASE_MS = 10_000;
const JOB_TIMEOUT_MS = 60_000;
const POLICY: RetryPolicy = { maxAttempts: 3, backoff: { baseMs: 1000, maxMs: 4000 } };

function ids(jobs: Iterable<Job>): string[] {
  return [...jobs].map((job) => job.id);
}

function resultOf(job: Job): JobResult {
  return { id: `filtered-of-${job.image_id}`, type: 'filtered', source_image_id: job.image_id };
}

describe('job book: the jobs over the datastore, with the queue and holder indexes', () => {
  let dir: TempDir;
  let store: Store;
  let clock: { now: number };
  let changes: JobChange[];
  let refusals: JobRefusal[];
  let work: number;
  let book: JobBook;

  function newBook(): JobBook {
    return new JobBook(
      store,
      POLICY,
      LEASE_MS,
      JOB_TIMEOUT_MS,
      {
        onChange: (change) => changes.push({ ...change, job: structuredClone(change.job) }),
        onRefused: (refusal) => refusals.push(refusal),
        onWork: () => {
          work += 1;
        },
      },
      () => clock.now,
    );
  }

  /** An original uploaded to the workload, recorded as the image library does, and its queued job. */
  function upload(workloadId: string): Job {
    const imageId = randomUUID();
    const job = book.create(workloadId, imageId);
    store.data.images[imageId] = {
      id: imageId,
      workload_id: workloadId,
      owner: 'ann',
      type: 'original',
      source_image_id: null,
      job_id: job.id,
      file: `${workloadId}/${imageId}.png`,
      mime: 'image/png',
      bytes: 1000,
      width: 10,
      height: 10,
      created_at: iso(clock.now),
      seq: store.originals.nextSeq(),
    };
    store.originals.add(workloadId, imageId);
    store.changed('images', imageId, undefined);
    return job;
  }

  function assign(job: Job, workerId: string): string {
    return leaseId(applied(book.assign(job.id, workerId)));
  }

  function run(job: Job, workerId: string): string {
    const lease = assign(job, workerId);
    applied(book.start(job.id, workerId, lease));
    return lease;
  }

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore(dir.path);
    clock = { now: T0 };
    changes = [];
    refusals = [];
    work = 0;
    book = newBook();
  });

  afterEach(async () => {
    await store.close();
    await dir.remove();
  });

  describe('the queue', () => {
    it('lists the queued jobs in creation order, without those assigned, running or finished', () => {
      const [a, b, c, d, e] = [1, 2, 3, 4, 5].map(() => upload('wl'));
      expect(ids(book.ready(T0))).to.deep.equal([a!.id, b!.id, c!.id, d!.id, e!.id]);
      assign(b!, 'w1');
      run(c!, 'w1');
      applied(book.complete(d!.id, 'w1', run(d!, 'w1'), resultOf(d!)));
      expect(ids(book.ready(T0))).to.deep.equal([a!.id, e!.id]);
    });

    it('skips a job waiting out its backoff until the backoff ends, which nextBackoffEnd tells', () => {
      const [a, b, c] = [1, 2, 3].map(() => upload('wl'));
      expect(book.nextBackoffEnd(T0)).to.equal(null);
      applied(book.fail(b!.id, 'w1', run(b!, 'w1'), 'boom', true));
      clock.now = T0 + 100;
      applied(book.fail(c!.id, 'w1', run(c!, 'w1'), 'boom', true));
      const ends = [b!, c!].map((job) => store.data.jobs[job.id]!.not_before);
      const first = Math.min(...ends);
      expect(book.nextBackoffEnd(T0 + 100)).to.equal(first);
      expect(ids(book.ready(first - 1))).to.deep.equal([a!.id]);
      const later = Math.max(...ends);
      expect(book.nextBackoffEnd(later - 1)).to.equal(later);
      expect(ids(book.ready(later))).to.deep.equal([a!.id, b!.id, c!.id]);
      expect(book.nextBackoffEnd(later)).to.equal(null);
    });

    it('a job sent back to the queue keeps its place in creation order, as after a restart', async () => {
      const [a, b, c] = [1, 2, 3].map(() => upload('wl'));
      applied(book.unassign(a!.id, 'w1', assign(a!, 'w1'))); // the worker declined
      await store.close();
      store = await openStore(dir.path);
      const rebuilt = newBook();
      expect(ids(rebuilt.ready(T0))).to.deep.equal([a!.id, b!.id, c!.id]);
      expect(ids(book.ready(T0))).to.deep.equal([a!.id, b!.id, c!.id]);
    });
  });

  describe('the holder index', () => {
    it('follows the jobs each worker holds through assign, start, complete, fail, release and unassign', () => {
      const [a, b, c, d, e] = [1, 2, 3, 4, 5].map(() => upload('wl'));
      const leaseA = assign(a!, 'w1');
      const leaseB = run(b!, 'w1');
      const leaseC = run(c!, 'w2');
      const leaseD = assign(d!, 'w2');
      const leaseE = run(e!, 'w1');
      expect([...book.heldBy('w1')].sort()).to.deep.equal([a!.id, b!.id, e!.id].sort());
      expect([...book.heldBy('w2')].sort()).to.deep.equal([c!.id, d!.id].sort());
      expect(book.leasedCount()).to.equal(5);
      applied(book.start(a!.id, 'w1', leaseA));
      expect(book.heldBy('w1').has(a!.id)).to.equal(true);
      applied(book.complete(a!.id, 'w1', leaseA, resultOf(a!)));
      applied(book.fail(b!.id, 'w1', leaseB, 'boom', true));
      applied(book.release(c!.id, 'w2', leaseC, 'worker died'));
      applied(book.unassign(d!.id, 'w2', leaseD));
      expect([...book.heldBy('w1')]).to.deep.equal([e!.id]);
      expect(book.heldBy('w2').size).to.equal(0);
      expect(book.leasedCount()).to.equal(1);
      applied(book.fail(e!.id, 'w1', leaseE, 'not an image', false));
      expect(book.heldBy('w1').size).to.equal(0);
      expect(book.leasedCount()).to.equal(0);
    });

    it("a refused transition leaves the indexes alone: a stale holder's report does not free the slot", () => {
      const job = upload('wl');
      const old = assign(job, 'w1');
      applied(book.unassign(job.id, 'w1', old));
      const current = assign(job, 'w1');
      expect(book.fail(job.id, 'w1', old, 'late report', true)).to.deep.equal({ ok: false, refusal: 'lease_moved' });
      expect([...book.heldBy('w1')]).to.deep.equal([job.id]);
      expect(store.data.jobs[job.id]!.lease?.lease_id).to.equal(current);
    });

    it('releaseAll frees every job of that worker, and only of that worker', () => {
      const [a, b, c] = [1, 2, 3].map(() => upload('wl'));
      assign(a!, 'w1');
      run(b!, 'w1');
      run(c!, 'w2');
      clock.now = T0 + 50;
      const released = book.releaseAll('w1', 'worker left');
      expect(ids(released).sort()).to.deep.equal([a!.id, b!.id].sort());
      expect(store.data.jobs[a!.id]).to.include({ state: 'queued', attempts: 0, not_before: 0 });
      expect(store.data.jobs[b!.id]).to.include({ state: 'queued', attempts: 1, error: 'worker left' });
      expect(book.heldBy('w1').size).to.equal(0);
      expect([...book.heldBy('w2')]).to.deep.equal([c!.id]);
      // the job never started is ready at once; the started one waits out its backoff
      expect(ids(book.ready(T0 + 50))).to.deep.equal([a!.id]);
      expect(book.releaseAll('w1', 'again')).to.deep.equal([]);
    });

    it('releaseAll: a job its worker said waits for a slot goes back at no cost, once per job', () => {
      const [job, other] = [upload('wl'), upload('wl')];
      const waiting = run(job!, 'w1');
      run(other!, 'w1');
      book.releaseAll('w1', 'worker w1 stopped sending heartbeats', true, new Set([waiting]));
      expect(store.data.jobs[job!.id]).to.include({
        state: 'queued',
        attempts: 0,
        error: 'worker w1 stopped sending heartbeats; the job had not started there (it waited for a slot)',
      });
      expect(store.data.jobs[other!.id]).to.include({ attempts: 1, error: 'worker w1 stopped sending heartbeats' });
      // said waiting again on a worker that died: it may have started after that heartbeat and taken the worker
      // down (an image that crashes the decoder), so this time it costs
      const again = run(job!, 'w2');
      book.releaseAll('w2', 'worker w2 stopped sending heartbeats', true, new Set([again]));
      expect(store.data.jobs[job!.id]).to.include({ attempts: 1, error: 'worker w2 stopped sending heartbeats' });
    });
  });

  describe('the lease sweep', () => {
    it('expire(now) releases only the leases past their expiry, and reports those', () => {
      const [a, b, c] = [1, 2, 3].map(() => upload('wl'));
      run(a!, 'w1');
      assign(b!, 'w2');
      clock.now = T0 + 5000;
      const leaseC = run(c!, 'w1');
      clock.now = T0 + 8000;
      applied(book.renew(a!.id, 'w1', leaseId(store.data.jobs[a!.id]!)));
      // a: renewed to T0+18000; b: expires at T0+10000; c: at T0+15000
      expect(book.expire(T0 + 9999)).to.deep.equal([]);
      expect(ids(book.expire(T0 + LEASE_MS))).to.deep.equal([b!.id]);
      expect(store.data.jobs[b!.id]).to.include({ state: 'queued', attempts: 0 });
      expect(ids(book.expire(T0 + 15_000))).to.deep.equal([c!.id]);
      expect(store.data.jobs[c!.id]).to.include({ state: 'queued', attempts: 1 });
      expect(store.data.jobs[c!.id]!.error).to.match(/lease expired: worker w1/);
      expect([...book.heldBy('w1')]).to.deep.equal([a!.id]);
      expect(book.heldBy('w2').size).to.equal(0);
      expect(book.expire(T0 + 15_000)).to.deep.equal([]);
      expect(refusals).to.deep.equal([]);
      // the worker whose lease was swept cannot complete the job any more
      expect(book.complete(c!.id, 'w1', leaseC, resultOf(c!))).to.deep.equal({ ok: false, refusal: 'lease_moved' });
    });

    it('timeOut(now) releases only the running jobs past the job timeout, renewed or not, and reports those', () => {
      const [a, b, c] = [1, 2, 3].map(() => upload('wl'));
      const leaseA = run(a!, 'w1');
      assign(b!, 'w2');
      clock.now = T0 + 5000;
      run(c!, 'w2');
      // both running jobs keep their leases renewed: their workers heartbeat
      for (clock.now = T0 + 5000; clock.now <= T0 + JOB_TIMEOUT_MS + 5000; clock.now += 5000) {
        applied(book.renew(a!.id, 'w1', leaseA));
        applied(book.renew(c!.id, 'w2', leaseId(store.data.jobs[c!.id]!)));
      }
      expect(book.timeOut(T0 + JOB_TIMEOUT_MS - 1)).to.deep.equal([]);
      expect(ids(book.timeOut(T0 + JOB_TIMEOUT_MS))).to.deep.equal([a!.id]);
      expect(store.data.jobs[a!.id]).to.include({ state: 'queued', attempts: 1, lease: null });
      expect(store.data.jobs[a!.id]!.error).to.match(/^ran too long: still running 1m after worker w1 started it/);
      expect(ids(book.timeOut(T0 + JOB_TIMEOUT_MS + 5000))).to.deep.equal([c!.id]);
      // the assigned job is not running: never timed out, whatever the time
      expect(book.timeOut(T0 + JOB_TIMEOUT_MS * 10)).to.deep.equal([]);
      expect(store.data.jobs[b!.id]).to.include({ state: 'assigned' });
      expect(book.heldBy('w1').size).to.equal(0);
      expect([...book.heldBy('w2')]).to.deep.equal([b!.id]);
      expect(refusals).to.deep.equal([]);
      expect(book.renew(a!.id, 'w1', leaseA)).to.deep.equal({ ok: false, refusal: 'lease_moved' });
    });
  });

  describe('retryFailed', () => {
    it("requeues the workload's failed jobs, and only those, with fresh attempts", () => {
      const [a, b, c] = [upload('wa'), upload('wa'), upload('wa')];
      const other = upload('wb');
      applied(book.fail(a!.id, 'w1', run(a!, 'w1'), 'not an image', false));
      applied(book.complete(b!.id, 'w1', run(b!, 'w1'), resultOf(b!)));
      applied(book.fail(c!.id, 'w1', run(c!, 'w1'), 'not an image', false));
      applied(book.fail(other.id, 'w1', run(other, 'w1'), 'not an image', false));
      clock.now = T0 + 30;
      expect(ids(book.retryFailed('wa'))).to.deep.equal([a!.id, c!.id]);
      for (const job of [a!, c!])
        expect(store.data.jobs[job.id]).to.include({ state: 'queued', attempts: 0, error: null, not_before: 0 });
      expect(store.data.jobs[b!.id]!.state).to.equal('done');
      expect(store.data.jobs[other.id]!.state).to.equal('failed');
      expect(ids(book.ready(T0 + 30))).to.deep.equal([a!.id, c!.id]);
      expect(book.retryFailed('wa')).to.deep.equal([]);
      expect(refusals).to.deep.equal([]);
    });
  });

  describe('the hooks', () => {
    it('onChange gets each job change with the state it left and since when; onWork when work may be placed', () => {
      const job = upload('wl');
      expect(changes.map((change) => [change.from, change.since, change.job.state])).to.deep.equal([
        [null, T0, 'queued'],
      ]);
      expect(work).to.equal(1);
      clock.now = T0 + 100;
      const lease = assign(job, 'w1');
      clock.now = T0 + 200;
      applied(book.start(job.id, 'w1', lease));
      clock.now = T0 + 300;
      applied(book.renew(job.id, 'w1', lease)); // not a change of state
      expect(work).to.equal(1); // a job leaving the queue frees no slot
      applied(book.complete(job.id, 'w1', lease, resultOf(job)));
      expect(changes.map((change) => [change.from, change.since, change.job.state])).to.deep.equal([
        [null, T0, 'queued'],
        ['queued', T0, 'assigned'],
        ['assigned', T0 + 100, 'running'],
        ['running', T0 + 200, 'done'],
      ]);
      expect(work).to.equal(2); // the slot it held is free
      book.poke();
      expect(work).to.equal(3);
    });

    it('onRefused gets every refused transition, with its name and reason, and no onChange follows', () => {
      const job = upload('wl');
      const lease = run(job, 'w1');
      const before = changes.length;
      book.assign('nope', 'w1');
      book.assign(job.id, 'w2');
      book.renew(job.id, 'w2', lease);
      book.complete(job.id, 'w1', lease, { ...resultOf(job), source_image_id: 'another' });
      book.unassign(job.id, 'w1', lease);
      expect(book.holderRefusal('complete', job.id, 'w1', 'old-lease')).to.equal('lease_moved');
      expect(book.holderRefusal('complete', job.id, 'w1', lease)).to.equal(null);
      expect(refusals).to.deep.equal([
        { transition: 'assign', refusal: 'no_job', job_id: 'nope' },
        { transition: 'assign', refusal: 'wrong_state', job_id: job.id },
        { transition: 'renew', refusal: 'lease_moved', job_id: job.id },
        { transition: 'complete', refusal: 'wrong_result', job_id: job.id },
        { transition: 'unassign', refusal: 'wrong_state', job_id: job.id },
        { transition: 'complete', refusal: 'lease_moved', job_id: job.id },
      ]);
      expect(changes.length).to.equal(before);
    });
  });

  describe('after a restart', () => {
    it('a book on the reopened store rebuilds the queue and the holders, leases re-granted from its now', async () => {
      const [queued, assigned, running, done, inBackoff] = [1, 2, 3, 4, 5].map(() => upload('wl'));
      assign(assigned!, 'w1');
      const leaseRunning = run(running!, 'w2');
      applied(book.complete(done!.id, 'w1', run(done!, 'w1'), resultOf(done!)));
      applied(book.fail(inBackoff!.id, 'w1', run(inBackoff!, 'w1'), 'boom', true));
      await store.commit();
      await store.close();

      store = await openStore(dir.path);
      clock.now = T0 + 60_000; // every lease ran out while the server was down
      const restarted = newBook();
      expect(ids(restarted.ready(clock.now))).to.deep.equal([queued!.id, inBackoff!.id]);
      expect(ids(restarted.ready(T0))).to.deep.equal([queued!.id]);
      expect([...restarted.heldBy('w1')]).to.deep.equal([assigned!.id]);
      expect([...restarted.heldBy('w2')]).to.deep.equal([running!.id]);
      expect(restarted.leasedCount()).to.equal(2);
      for (const job of [assigned!, running!])
        expect(store.data.jobs[job.id]!.lease?.expires_at).to.equal(clock.now + LEASE_MS);
      expect(restarted.expire(clock.now + LEASE_MS - 1)).to.deep.equal([]);
      // the worker that comes back in time keeps its job under the lease it had
      applied(restarted.complete(running!.id, 'w2', leaseRunning, resultOf(running!)));
      expect(ids(restarted.expire(clock.now + LEASE_MS))).to.deep.equal([assigned!.id]);
      expect(restarted.leasedCount()).to.equal(0);
    });
  });
});
