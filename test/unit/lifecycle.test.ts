// Cancel and delete through the lifecycle, over the real store and books: everything kept about a
// deleted workload goes (records, counts, indexes, queue groups, quota shares), a cancelled job refuses
// whatever its last holder sends, and a book rebuilt from the reopened store agrees.
import { readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import { DiskRoom } from '../../controller/disk-room.js';
import { LocalImageStore } from '../../controller/image-store/index.js';
import { ImageLibrary } from '../../controller/images.js';
import { LeftoverRemovals } from '../../controller/leftover-removals.js';
import { Lifecycle } from '../../controller/lifecycle.js';
import { UserQuotas } from '../../controller/quotas.js';
import type { Workload } from '../../controller/store/index.js';
import { expiresAt } from '../../controller/workloads.js';
import { addWorkload, booksPerTest, complete, upload, type Books } from './books.js';
import { applied, leaseId, T0 } from './helpers.js';

describe('lifecycle: cancel and delete', () => {
  const fixture = booksPerTest();
  let books: Books;
  let library: ImageLibrary;
  let lifecycle: Lifecycle;

  beforeEach(() => {
    books = fixture.books;
  });

  /** The library and the lifecycle over the books as they are now (the library counts the records it finds). */
  function open(files = new LocalImageStore(fixture.dir)): void {
    library = new ImageLibrary(
      books.store,
      books.jobs,
      files,
      new DiskRoom([], 0),
      new UserQuotas({ images: 4, bytes: null }),
    );
    lifecycle = new Lifecycle(
      books.store,
      books.jobs,
      library,
      () => undefined,
      new LeftoverRemovals(createLogger('test', 'silent'), { baseMs: 5, maxMs: 20 }),
      () => books.clock.now,
    );
  }

  /** A workload with a done, a running, a failed and a queued job. */
  function busy(owner: string, tags: string[] = []): Workload {
    const { jobs } = books;
    const workload = addWorkload(books, owner, 'grayscale', tags);
    const [done, running, failed] = [1, 2, 3].map(() => upload(books, workload));
    upload(books, workload);
    applied(jobs.assign(done!.id, 'w1'));
    complete(books, done!);
    const lease = leaseId(applied(jobs.assign(running!.id, 'w1')));
    applied(jobs.start(running!.id, 'w1', lease));
    applied(jobs.fail(failed!.id, 'w2', leaseId(applied(jobs.assign(failed!.id, 'w2'))), 'bad', false));
    return workload;
  }

  it('cancel ends the unfinished jobs, keeps the results, and refuses the holder with `cancelled`', async () => {
    const workload = busy('ann');
    open();
    const running = Object.values(books.store.data.jobs).find((job) => job.state === 'running')!;
    const lease = leaseId(running);
    expect(await lifecycle.cancel(workload)).to.equal(2);
    expect(books.jobs.tally.of(workload.id).counts).to.include({ done: 1, failed: 1, cancelled: 2, queued: 0 });
    expect(books.jobs.heldBy('w1').size, 'the lease went with the job').to.equal(0);
    expect([...books.jobs.ready(books.clock.now)], 'nothing left to place').to.deep.equal([]);
    const late = books.jobs.fail(running.id, 'w1', lease, 'late', true);
    expect(late).to.deep.equal({ ok: false, refusal: 'cancelled' });
    expect(books.jobs.holderRefusal('complete', running.id, 'w1', lease)).to.equal('cancelled');
    try {
      await lifecycle.cancel(workload);
      expect.fail('a second cancel was accepted');
    } catch (error) {
      expect(String(error)).to.match(/already cancelled/);
    }
  });

  it('delete takes out every record and every count of the workload, and gives the quota back', async () => {
    const other = busy('ann', ['gpu']);
    const doomed = busy('ann', ['gpu']);
    open();
    const { store, jobs } = books;
    const totals = structuredClone(library.totals());
    const ids = {
      images: Object.values(store.data.images).filter((image) => image.workload_id === doomed.id),
      jobs: Object.values(store.data.jobs).filter((job) => job.workload_id === doomed.id),
    };
    expect(() => library.checkQuota('ann', 1), 'ann keeps 8 originals of 4').to.throw(/quota/);

    const removed = await lifecycle.deleteWorkload(doomed, 'user');
    expect(removed).to.deep.equal({ images: 5, bytes: 4 * 1000 + 500, cancelled_jobs: 2 });
    for (const image of ids.images) expect(store.data.images[image.id]).to.equal(undefined);
    for (const job of ids.jobs) expect(store.data.jobs[job.id]).to.equal(undefined);
    expect(store.data.workloads[doomed.id]).to.equal(undefined);
    expect(store.originals.of(doomed.id)).to.deep.equal([]);
    expect(store.workloadIndex.of('ann')).to.deep.equal([other.id]);
    expect(jobs.tally.of(doomed.id).counts).to.deep.equal(jobs.tally.of('never-there').counts);
    expect(library.totals().original).to.deep.equal({
      images: totals.original.images - 4,
      bytes: totals.original.bytes - 4000,
    });
    expect(library.totals().filtered.images).to.equal(totals.filtered.images - 1);
    expect(library.removedTotals().original.images).to.equal(4);
    expect(lifecycle.totals().user).to.deep.equal({ workloads: 1, images: 5, bytes: 4500 });
    expect(() => library.checkQuota('ann', 1), 'back to 4 of 4').to.throw(/quota/);
    await lifecycle.deleteWorkload(other, 'retention');
    library.checkQuota('ann', 1);
    expect(jobs.tally.counts()).to.deep.equal(jobs.tally.of('never-there').counts);
    expect(store.workloadIndex.size).to.equal(0);

    const reopened = await fixture.reopen();
    expect(reopened.store.data.workloads).to.deep.equal({});
    expect(reopened.store.data.images).to.deep.equal({});
    expect(reopened.store.data.jobs).to.deep.equal({});
  });

  it("deleting originals one by one takes their jobs off the workload's lists of done jobs", async () => {
    const workload = addWorkload(books, 'ann');
    const jobs = [1, 2, 3, 4, 5, 6].map(() => upload(books, workload));
    for (const job of jobs) {
      applied(books.jobs.assign(job.id, 'w1'));
      complete(books, job);
    }
    open();
    for (const job of [jobs[0]!, jobs[2]!, jobs[4]!])
      await lifecycle.deleteImage(books.store.data.images[job.image_id]!);
    const kept = [jobs[1]!, jobs[3]!, jobs[5]!].map((job) => job.id);
    expect(books.jobs.tally.of(workload.id).done).to.deep.equal(kept);
    expect(books.jobs.tally.of(workload.id).counts.done).to.equal(3);
  });

  it("holds a deleted workload's name until its folder is gone, then frees it", async () => {
    const workload = addWorkload(books, 'ann');
    open();
    const deleting = lifecycle.deleteWorkload(workload, 'user');
    expect(books.store.workloadIndex.nameTaken(workload.name)).to.equal(false);
    expect(books.store.workloadIndex.nameHeld(workload.name), 'held while its folder goes').to.equal(true);
    expect(() => addWorkload(books, 'bob', 'grayscale').name).to.not.throw();
    await deleting;
    expect(books.store.workloadIndex.nameHeld(workload.name)).to.equal(false);
  });

  it('a folder that cannot be removed yet: the deletion stands, the name waits for the retry', async () => {
    const workload = addWorkload(books, 'ann');
    let failures = 2;
    const files = new (class extends LocalImageStore {
      override async removeFolder(name: string): Promise<void> {
        if (failures-- > 0) throw new Error('EBUSY: the folder is busy');
        await super.removeFolder(name);
      }
    })(fixture.dir);
    open(files);
    await library.makeFolder(workload);
    const removed = await lifecycle.deleteWorkload(workload, 'user');
    expect(removed).to.include({ images: 0, cancelled_jobs: 0 });
    expect(books.store.data.workloads[workload.id], 'deleted and committed').to.equal(undefined);
    expect(books.store.workloadIndex.nameHeld(workload.name), 'held while its folder is there').to.equal(true);
    expect(await readdir(fixture.dir)).to.include(workload.name);
    const deadline = Date.now() + 5000;
    while (books.store.workloadIndex.nameHeld(workload.name) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(books.store.workloadIndex.nameHeld(workload.name), 'free once the folder is gone').to.equal(false);
    expect(await readdir(fixture.dir)).to.not.include(workload.name);
    expect(failures, 'tried three times').to.equal(-1);
  });

  it('an upload racing the deletion of its workload keeps nothing and is answered 404, never 500', async () => {
    const workload = addWorkload(books, 'ann');
    open();
    await library.makeFolder(workload);
    const png = Buffer.from('not decoded here: the library keeps bytes');
    const uploading = library.addOriginal(workload, {
      content: { kind: 'memory', data: png },
      bytes: png.length,
      mime: 'image/png',
      width: 1,
      height: 1,
    });
    // the upload is inside its file's put now
    const deleting = lifecycle.deleteWorkload(workload, 'user');
    const [upload, deletion] = await Promise.allSettled([uploading, deleting]);
    expect(deletion.status).to.equal('fulfilled');
    expect(upload.status).to.equal('rejected');
    expect((upload as PromiseRejectedResult).reason).to.include({ kind: 'not_found' });
    expect(books.store.data.images).to.deep.equal({});
    expect(books.jobs.tally.counts()).to.deep.equal(books.jobs.tally.of('never-there').counts);
    // nothing but the datastore's own files (its journal, snapshot and lock)
    const left = await readdir(fixture.dir);
    expect(left.filter((name) => !name.startsWith('db.') && name !== 'LOCK')).to.deep.equal([]);
  });

  it('a deletion whose commit fails is undone whole: records, counts and indexes are back', async () => {
    const workload = busy('ann');
    open();
    const { store, jobs } = books;
    const before = {
      counts: structuredClone(jobs.tally.of(workload.id).counts),
      originals: [...store.originals.of(workload.id)],
      totals: structuredClone(library.totals()),
      images: Object.keys(store.data.images).length,
    };
    await store.commit();
    // a fresh store appends to segment 1; after a snapshot, to segment 2, which fails as a full disk does
    await store.compact();
    await symlink('/dev/full', path.join(fixture.dir, 'db.journal.2'));
    try {
      await lifecycle.deleteWorkload(workload, 'user');
      expect.fail('the deletion was answered');
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).to.equal('ENOSPC');
    }
    expect(store.data.workloads[workload.id], 'the same object, as others hold it').to.equal(workload);
    expect(Object.keys(store.data.images).length).to.equal(before.images);
    expect(store.originals.of(workload.id)).to.deep.equal(before.originals);
    expect(library.totals()).to.deep.equal(before.totals);
    expect(store.workloadIndex.nameHeld(workload.name)).to.equal(false);
    expect(store.workloadIndex.nameTaken(workload.name)).to.equal(true);
    // the cancelled jobs are back as they were (the running one holds its lease again)
    expect(jobs.tally.of(workload.id).counts).to.deep.equal(before.counts);
  });

  it('retention: a workload expires its period after its last activity, never while a job is unfinished', () => {
    const configured = { ...books, config: { retentionMs: 60_000 } };
    const workload = addWorkload(books, 'ann');
    expect(expiresAt(books, workload), 'off').to.equal(null);
    expect(expiresAt(configured, workload), 'empty: from its creation').to.equal(
      Date.parse(workload.created_at) + 60_000,
    );
    const job = upload(books, workload);
    expect(expiresAt(configured, workload), 'a queued job').to.equal(null);
    books.clock.now = T0 + 5000;
    applied(books.jobs.assign(job.id, 'w1'));
    books.clock.now = T0 + 9000;
    complete(books, job);
    expect(expiresAt(configured, workload), 'from its last job change').to.equal(T0 + 9000 + 60_000);
  });
});
