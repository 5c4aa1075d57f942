import { expect } from 'chai';
import type { Job } from '../../controller/store/index.js';
import { chooseWorker, placeJobs } from '../../scheduler/index.js';
import type { WorkerCandidate } from '../../controller/index.js';
import { addWorker, addWorkload, booksPerTest, upload, watchReads, type Books } from './books.js';
import { applied, leaseId } from './helpers.js';

/** What a pass placed, as [job id, worker id]. */
type Placed = [string, string][];

/** The placements of a walk over every ready job, as the pass was before (nothing is assigned). */
function walkEveryJob(books: Books): Placed {
  const { port, clock } = books;
  const free = new Map<WorkerCandidate, number>();
  for (const worker of port.candidates(clock.now)) free.set(worker, worker.free_slots);
  const placed: Placed = [];
  if (free.size === 0) return placed;
  for (const job of port.ready(clock.now, () => true)) {
    const best = chooseWorker(free, job);
    if (!best) continue;
    placed.push([job.job_id, best.id]);
    const left = (free.get(best) ?? 1) - 1;
    if (left > 0) free.set(best, left);
    else free.delete(best);
    if (free.size === 0) break;
  }
  return placed;
}

function pass(books: Books): Placed {
  return placeJobs(books.port, books.clock.now).map((placement) => [placement.job.job_id, placement.worker.id]);
}

describe('scheduler pass: jobs grouped by what they need', () => {
  const fixture = booksPerTest();
  let books: Books;

  beforeEach(() => {
    books = fixture.books;
  });

  it('reads no job of a queue that no candidate can run, nor any job waiting out a backoff', () => {
    const blur = addWorkload(books, 'ann', 'blur');
    const gpu = addWorkload(books, 'bob', 'grayscale', ['gpu']);
    const plain = addWorkload(books, 'cy', 'grayscale');
    const unrunnable = new Set<string>();
    for (let index = 0; index < 500; index++) {
      unrunnable.add(upload(books, blur).id);
      unrunnable.add(upload(books, gpu).id);
    }
    // jobs back in the queue after a failure wait out their backoff: not ready, so not to be read either
    const waiting = [1, 2, 3].map(() => upload(books, plain));
    for (const job of waiting) {
      const lease = leaseId(applied(books.jobs.assign(job.id, 'gone')));
      applied(books.jobs.fail(job.id, 'gone', lease, 'flaky', true));
      unrunnable.add(job.id);
    }
    const [first, second, third] = [1, 2, 3].map(() => upload(books, plain));
    addWorker(books, 'w1', ['grayscale'], [], 2);

    const reads = watchReads(books.store, 'jobs');
    const placed = pass(books);
    reads.stop();
    expect(placed).to.deep.equal([
      [first!.id, 'w1'],
      [second!.id, 'w1'],
    ]);
    const readUnrunnable = [...reads.byKey.keys()].filter((id) => unrunnable.has(id));
    expect(readUnrunnable.length, 'jobs read that no candidate could take').to.equal(0);
    expect(reads.walks, 'walks over every job').to.equal(0);
    expect(reads.byKey.size, 'jobs read at all').to.be.at.most(10);
    expect(books.store.data.jobs[third!.id]!.state).to.equal('queued');
  });

  it('stops reading a group once its candidates are full, and goes on with the groups others can run', () => {
    const plain = addWorkload(books, 'ann', 'grayscale');
    const blur = addWorkload(books, 'bob', 'blur');
    const plainJobs: Job[] = [];
    for (let index = 0; index < 300; index++) plainJobs.push(upload(books, plain));
    const blurJob = upload(books, blur);
    addWorker(books, 'gray', ['grayscale'], [], 1);
    addWorker(books, 'blurry', ['blur'], [], 1);
    const reads = watchReads(books.store, 'jobs');
    expect(pass(books)).to.deep.equal([
      [plainJobs[0]!.id, 'gray'],
      [blurJob.id, 'blurry'],
    ]);
    reads.stop();
    expect(plainJobs.slice(2).filter((job) => reads.byKey.has(job.id))).to.deep.equal([]);
  });

  it('keeps upload order within a group and across groups: workloads with the same needs share one', () => {
    const a = addWorkload(books, 'ann', 'grayscale', ['fast', 'gpu']);
    const b = addWorkload(books, 'bob', 'grayscale', ['gpu', 'fast']);
    const c = addWorkload(books, 'cy', 'blur');
    const uploads = [a, b, c, a, c, b, a].map((workload) => upload(books, workload));
    // a declined job keeps its place
    applied(books.jobs.unassign(uploads[0]!.id, 'w0', leaseId(applied(books.jobs.assign(uploads[0]!.id, 'w0')))));
    addWorker(books, 'w1', ['grayscale', 'blur'], ['gpu', 'fast', 'local'], 7);
    expect(pass(books).map(([id]) => id)).to.deep.equal(uploads.map((job) => job.id));
  });

  it('places exactly what a walk over every ready job places, pass after pass', () => {
    let state = 7;
    const next = (): number => {
      state = (state * 48271) % 2147483647;
      return state / 2147483647;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
    const workloads = [
      addWorkload(books, 'ann', 'grayscale'),
      addWorkload(books, 'ann', 'blur'),
      addWorkload(books, 'bob', 'grayscale', ['gpu']),
      addWorkload(books, 'bob', 'blur', ['gpu', 'fast']),
      addWorkload(books, 'cy', 'sepia'),
    ];
    addWorker(books, 'w1', ['grayscale'], [], 2);
    addWorker(books, 'w2', ['grayscale', 'blur'], ['gpu'], 1);
    addWorker(books, 'w3', ['blur'], ['gpu', 'fast'], 3);
    let placedInAll = 0;
    for (let round = 0; round < 60; round++) {
      for (let count = Math.floor(next() * 12); count > 0; count--) upload(books, pick(workloads));
      const expected = walkEveryJob(books);
      expect(pass(books), `round ${round}`).to.deep.equal(expected);
      placedInAll += expected.length;
      // the placed jobs end one way or another, and free their slots
      for (const [jobId, workerId] of expected) {
        const lease = leaseId(books.store.data.jobs[jobId]!);
        const roll = next();
        if (roll < 0.5) applied(books.jobs.start(jobId, workerId, lease));
        else if (roll < 0.7) applied(books.jobs.unassign(jobId, workerId, lease));
        else applied(books.jobs.fail(jobId, workerId, lease, 'flaky', true));
      }
      for (const job of Object.values(books.store.data.jobs)) {
        if (job.state === 'running' && next() < 0.6)
          applied(books.jobs.fail(job.id, job.lease!.worker_id, leaseId(job), 'done with it', false));
      }
      books.clock.now += Math.floor(next() * 1500);
    }
    expect(placedInAll).to.be.above(60);
  });
});
