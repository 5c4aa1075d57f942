// The scheduling port over each datastore: the same job book, registry and port, with the records kept by lowdb
// or by PostgreSQL (a real server the test starts). What the scheduler does through the port, and what a
// restarted (or newly leading) controller finds after it.
import { expect } from 'chai';
import { openPostgresStore } from '../../controller/store/postgres/postgres-store.js';
import { openStore, type Job, type Store } from '../../controller/store/index.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addWorker, addWorkload, booksOver, complete, LEASE_MS, POLICY, upload, type Books } from '../unit/books.js';
import { T0, tempDir, type TempDir } from '../unit/helpers.js';

interface Backing {
  open(): Promise<Store>;
  remove(): Promise<void>;
}

let postgres: TestPostgres | null = null;
const kinds: { name: string; setUp(): Promise<void>; backing(): Promise<Backing>; tearDown(): Promise<void> }[] = [
  {
    name: 'lowdb',
    setUp: async () => undefined,
    async backing() {
      const dir: TempDir = await tempDir();
      return { open: () => openStore(dir.path), remove: () => dir.remove() };
    },
    tearDown: async () => undefined,
  },
  {
    name: 'postgres',
    async setUp() {
      postgres = await startPostgres();
    },
    async backing() {
      const url = await postgres!.createDatabase();
      return { open: () => openPostgresStore(url), remove: async () => undefined };
    },
    async tearDown() {
      await postgres?.stop();
      postgres = null;
    },
  },
];

for (const kind of kinds) {
  describe(`scheduling port contract: ${kind.name}`, function () {
    this.timeout(60_000);
    let backing: Backing;
    let books: Books;

    before(async function () {
      if (kind.name === 'postgres') skipWithoutPostgres(this);
      await kind.setUp();
    });

    after(() => kind.tearDown());

    beforeEach(async () => {
      backing = await kind.backing();
      books = booksOver(await backing.open(), { now: T0 });
    });

    afterEach(async () => {
      await books.store.close();
      await backing.remove();
    });

    /** The store closed and opened again, the books built over it as a restarted controller builds them. */
    async function restart(): Promise<Books> {
      await books.store.close();
      books = booksOver(await backing.open(), books.clock);
      return books;
    }

    /** A workload with `count` uploads, committed, and a worker `w1` with `slots` free. */
    async function queued(count: number, slots = 1): Promise<Job[]> {
      const workload = addWorkload(books, 'alice');
      const jobs = Array.from({ length: count }, () => upload(books, workload));
      await books.store.commit();
      addWorker(books, 'w1', ['grayscale'], [], slots);
      return jobs;
    }

    /** The scheduler's placement of the first ready job on w1: assigned, accepted (started), committed. */
    async function place(): Promise<{ job: string; lease: string }> {
      const ready = [...books.port.ready(books.clock.now, () => true)];
      expect(ready, 'a job is ready').to.not.be.empty;
      const job = ready[0]!.job_id;
      const grant = books.port.assign(job, 'w1');
      if (!grant.ok) expect.fail(`assign refused: ${grant.refusal}`);
      expect(books.port.start(job, 'w1', grant.lease_id).ok).to.equal(true);
      await books.port.commit();
      return { job, lease: grant.lease_id };
    }

    it('offers queued jobs to a worker with a free slot, and keeps the placement', async () => {
      await queued(2);
      expect(books.port.candidates(books.clock.now).map((worker) => worker.id)).to.deep.equal(['w1']);
      const { job, lease } = await place();
      expect(books.store.data.jobs[job]).to.deep.include({ state: 'running', attempts: 1 });
      await restart();
      expect(books.store.data.jobs[job]!.lease?.lease_id).to.equal(lease);
      expect(books.store.data.jobs[job]!.state).to.equal('running');
      expect([...books.port.ready(books.clock.now, () => true)], 'one job is still queued').to.have.length(1);
    });

    it('offers a worker its slots plus its prefetch, and no more', async () => {
      await queued(3);
      books.registry.get('w1')!.prefetch = 1;
      const offered = (): number => books.port.candidates(books.clock.now)[0]?.free_slots ?? 0;
      expect(offered(), 'one slot and one job waiting on it').to.equal(2);
      await place();
      await place();
      expect(books.port.candidates(books.clock.now), 'a slot and a prefetch taken: full').to.deep.equal([]);
      expect([...books.port.ready(books.clock.now, () => true)], 'the third job waits in the queue').to.have.length(1);
    });

    it('honours a held lease after a restart and refuses a stale one', async () => {
      await queued(1);
      const { job, lease } = await place();
      await restart();
      expect(books.jobs.holderRefusal('complete', job, 'w1', 'another-lease')).to.equal('lease_moved');
      expect(books.jobs.holderRefusal('complete', job, 'w1', lease)).to.equal(null);
      complete(books, books.store.data.jobs[job]!);
      await books.store.commit();
      await restart();
      expect(books.store.data.jobs[job]).to.deep.include({ state: 'done', lease: null });
      expect(books.store.data.jobs[job]!.filtered_image_id).to.be.a('string');
    });

    it('takes back an assignment the worker declined, at no cost', async () => {
      const [first] = await queued(1);
      const grant = books.port.assign(first!.id, 'w1');
      if (!grant.ok) expect.fail(`assign refused: ${grant.refusal}`);
      expect(books.port.unassign(first!.id, 'w1', grant.lease_id).ok).to.equal(true);
      await books.port.commit();
      await restart();
      expect(books.store.data.jobs[first!.id]).to.deep.include({ state: 'queued', attempts: 0, lease: null });
    });

    it('keeps a failed attempt waiting out its backoff across a restart', async () => {
      await queued(1);
      const { job, lease } = await place();
      expect(books.jobs.fail(job, 'w1', lease, 'the engine crashed', true).ok).to.equal(true);
      await books.store.commit();
      await restart();
      expect(books.store.data.jobs[job]).to.deep.include({ state: 'queued', attempts: 1, error: 'the engine crashed' });
      expect([...books.port.ready(books.clock.now, () => true)], 'not before its backoff').to.have.length(0);
      books.clock.now += POLICY.backoff.maxMs + 1;
      expect([...books.port.ready(books.clock.now, () => true)].map((ready) => ready.job_id)).to.deep.equal([job]);
    });

    it('expires a lease its worker no longer renews, and the job goes back to the queue', async () => {
      await queued(1);
      const { job } = await place();
      books.clock.now += LEASE_MS * 3;
      await restart();
      books.clock.now += LEASE_MS * 3;
      const expired = books.jobs.expire(books.clock.now);
      expect(expired.map((item) => item.id)).to.deep.equal([job]);
      await books.store.commit();
      await restart();
      expect(books.store.data.jobs[job]!.state).to.equal('queued');
      expect(books.store.data.jobs[job]!.lease).to.equal(null);
    });
  });
}
