import { expect } from 'chai';
import { JOB_STATES, noJobs, type StateCounts } from '../../controller/job-tally.js';
import type { Job, JobState, Store, Workload } from '../../controller/store/index.js';
import { viewWorkload, type WorkloadView } from '../../controller/workloads.js';
import { chainOf } from '../../controller/workload-needs.js';
import { addWorkload, booksPerTest, complete, LEASE_MS, upload, type Books } from './books.js';
import { applied, leaseId, T0 } from './helpers.js';

/** Jobs per state counted the way the scrape did before: a walk over every job. */
function walkedCounts(store: Store, workloadId?: string): StateCounts {
  const counts = noJobs();
  for (const job of Object.values(store.data.jobs))
    if (!workloadId || job.workload_id === workloadId) counts[job.state]++;
  return counts;
}

/** The workload view as it was computed before: a walk over the workload's originals. */
function walkedView(store: Store, workload: Workload): WorkloadView {
  const counts = noJobs();
  const filtered: string[] = [];
  const failures: { image_id: string; error: string }[] = [];
  const originals = store.originals.of(workload.id);
  for (const imageId of originals) {
    const original = store.data.images[imageId];
    const job = original?.job_id ? store.data.jobs[original.job_id] : undefined;
    if (!original || !job) continue;
    counts[job.state] += 1;
    const result = job.state === 'done' && job.filtered_image_id ? store.data.images[job.filtered_image_id] : undefined;
    if (result) filtered.push(result.id);
    if (job.state === 'failed') failures.push({ image_id: original.id, error: job.error ?? 'failed' });
  }
  const total = originals.length;
  const finished = counts.done + counts.failed + counts.cancelled;
  const active = counts.assigned + counts.running;
  const progress =
    total > 0 && finished === total ? 'completed' : active > 0 || finished > 0 ? 'running' : 'scheduling';
  return {
    workload_id: workload.id,
    workload_name: workload.name,
    filter: workload.filter,
    operations: chainOf(workload),
    tags: workload.tags,
    status: workload.cancelled_at ? 'cancelled' : progress,
    running_jobs: active,
    filtered_images: filtered,
    total_images: total,
    queued_jobs: counts.queued,
    done_jobs: counts.done,
    failed_jobs: counts.failed,
    cancelled_jobs: counts.cancelled,
    failures,
    created_at: workload.created_at,
    cancelled_at: workload.cancelled_at ?? null,
  };
}

/** The queued jobs ready at `now`, oldest upload first, found by a walk over every job. */
function walkedReady(store: Store, now: number): string[] {
  const seq = (job: Job): number => store.data.images[job.image_id]?.seq ?? Number.MAX_SAFE_INTEGER;
  return Object.values(store.data.jobs)
    .filter((job) => job.state === 'queued' && job.not_before <= now)
    .sort((a, b) => seq(a) - seq(b))
    .map((job) => job.id);
}

/** The kept counts, views and queue agree with walks over the datastore. */
function expectInStep(books: Books, workloads: Workload[], where: string): void {
  const { store, jobs, clock } = books;
  expect(jobs.tally.counts(), `${where}: jobs per state`).to.deep.equal(walkedCounts(store));
  for (const workload of workloads) {
    expect(jobs.tally.of(workload.id).counts, `${where}: ${workload.name} per state`).to.deep.equal(
      walkedCounts(store, workload.id),
    );
    expect(viewWorkload(books, workload), `${where}: view of ${workload.name}`).to.deep.equal(
      walkedView(store, workload),
    );
  }
  expect(
    [...jobs.ready(clock.now)].map((job) => job.id),
    `${where}: ready queue`,
  ).to.deep.equal(walkedReady(store, clock.now));
}

/** A small deterministic generator (mulberry32), so that a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('kept counts: jobs per state and per workload, kept as they change', () => {
  const fixture = booksPerTest();
  let books: Books;

  beforeEach(() => {
    books = fixture.books;
  });

  function inState(state: JobState): Job[] {
    return Object.values(books.store.data.jobs).filter((job) => job.state === state);
  }

  it('follow every transition: create, assign, start, complete, fail, release, unassign, expire, retry', () => {
    const { jobs, store } = books;
    const trip = addWorkload(books, 'ann');
    const other = addWorkload(books, 'bob', 'blur');
    const workloads = [trip, other];
    const [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map(() => upload(books, trip));
    const g = upload(books, other);
    expectInStep(books, workloads, 'created');
    expect(jobs.tally.counts()).to.deep.equal({ ...noJobs(), queued: 7 });

    const leaseA = leaseId(applied(jobs.assign(a!.id, 'w1')));
    expectInStep(books, workloads, 'assign');
    applied(jobs.start(a!.id, 'w1', leaseA));
    expectInStep(books, workloads, 'start');
    // completed out of upload order: the results still list in upload order
    const leaseB = leaseId(applied(jobs.assign(b!.id, 'w1')));
    applied(jobs.start(b!.id, 'w1', leaseB));
    complete(books, b!);
    complete(books, a!);
    expectInStep(books, workloads, 'complete');
    expect(viewWorkload(books, trip).filtered_images).to.have.length(2);

    applied(jobs.fail(c!.id, 'w1', leaseId(applied(jobs.assign(c!.id, 'w1'))), 'flaky', true));
    expectInStep(books, workloads, 'retryable fail');
    applied(jobs.fail(d!.id, 'w1', leaseId(applied(jobs.assign(d!.id, 'w1'))), 'not an image', false));
    expectInStep(books, workloads, 'fail for good');
    const leaseE = leaseId(applied(jobs.assign(e!.id, 'w2')));
    applied(jobs.unassign(e!.id, 'w2', leaseE));
    expectInStep(books, workloads, 'unassign');
    const leaseF = leaseId(applied(jobs.assign(f!.id, 'w2')));
    applied(jobs.start(f!.id, 'w2', leaseF));
    applied(jobs.release(f!.id, 'w2', leaseF, 'worker left'));
    expectInStep(books, workloads, 'release');
    applied(jobs.assign(g!.id, 'w3'));
    books.clock.now = T0 + LEASE_MS;
    expect(jobs.expire(books.clock.now)).to.have.length(1);
    expectInStep(books, workloads, 'expire');
    books.clock.now += 60_000; // every backoff over
    expectInStep(books, workloads, 'backoffs over');

    expect(jobs.retryFailed(trip.id).map((job) => job.id)).to.deep.equal([d!.id]);
    expectInStep(books, workloads, 'retry');
    // the last of its three attempts fails a job for good
    for (let attempt = 2; attempt <= 3; attempt++) {
      books.clock.now += 60_000;
      applied(jobs.fail(c!.id, 'w1', leaseId(applied(jobs.assign(c!.id, 'w1'))), `flaky ${attempt}`, true));
    }
    expectInStep(books, workloads, 'attempts used up');
    expect(viewWorkload(books, trip).failures).to.deep.equal([{ image_id: c!.image_id, error: 'flaky 3' }]);
    expect(store.data.jobs[c!.id]!.attempts).to.equal(3);
    expect(jobs.tally.of('no-such-workload').counts).to.deep.equal(noJobs());
    expect(store.data.jobs[c!.id]!.state).to.equal('failed');
  });

  it('stay in step through a long random run, and a book rebuilt from the reopened store has the same', async () => {
    const next = random(12);
    const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(next() * list.length)];
    const workloads = [
      addWorkload(books, 'ann'),
      addWorkload(books, 'ann', 'blur'),
      addWorkload(books, 'bob', 'grayscale', ['gpu']),
    ];
    const { jobs } = books;
    const lease = (job: Job): string => leaseId(books.store.data.jobs[job.id]!);
    const seen = new Set<JobState>();
    for (let step = 0; step < 600; step++) {
      const roll = next();
      const queued = [...jobs.ready(books.clock.now)];
      const held = [...inState('assigned'), ...inState('running')];
      const worker = pick(['w1', 'w2', 'w3'])!;
      if (roll < 0.2) upload(books, pick(workloads)!);
      else if (roll < 0.45 && queued.length) jobs.assign(pick(queued)!.id, worker);
      else if (roll < 0.55 && held.length) {
        const job = pick(held)!;
        jobs.start(job.id, job.lease!.worker_id, lease(job));
      } else if (roll < 0.68 && held.length) complete(books, pick(held)!);
      else if (roll < 0.76 && held.length) {
        const job = pick(held)!;
        jobs.fail(job.id, job.lease!.worker_id, lease(job), 'boom', next() < 0.7);
      } else if (roll < 0.81 && held.length) {
        const job = pick(held)!;
        jobs.release(job.id, job.lease!.worker_id, lease(job), 'gone');
      } else if (roll < 0.85 && held.length) {
        const job = pick(held)!;
        jobs.unassign(job.id, job.lease!.worker_id, lease(job));
      } else if (roll < 0.87) jobs.releaseAll(worker, 'worker died');
      else if (roll < 0.9) jobs.expire(books.clock.now);
      else if (roll < 0.915) jobs.retryFailed(pick(workloads)!.id);
      else if (roll < 0.93 && (queued.length || held.length)) jobs.cancel(pick([...queued, ...held])!.id);
      else books.clock.now += Math.floor(next() * 6000);
      for (const state of JOB_STATES) if (jobs.tally.counts()[state] > 0) seen.add(state);
      if (step % 20 === 0) expectInStep(books, workloads, `step ${step}`);
    }
    expectInStep(books, workloads, 'end of the run');
    expect([...seen].sort()).to.deep.equal([...JOB_STATES].sort());

    const counts = structuredClone(jobs.tally.counts());
    const views = workloads.map((workload) => viewWorkload(books, workload));
    const ready = [...jobs.ready(books.clock.now)].map((job) => job.id);
    books = await fixture.reopen();
    expect(books.jobs.tally.counts()).to.deep.equal(counts);
    const reopened = workloads.map((workload) => books.store.data.workloads[workload.id]!);
    expect(reopened.map((workload) => viewWorkload(books, workload))).to.deep.equal(views);
    expect([...books.jobs.ready(books.clock.now)].map((job) => job.id)).to.deep.equal(ready);
    expectInStep(books, reopened, 'rebuilt');
  });
});
