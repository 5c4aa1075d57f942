// One contract, every datastore: lowdb's files in a data folder, and PostgreSQL (a real server the test starts).
// What is committed is there after a reopen, whole; what failed to commit is rolled back whole, and the store
// goes on once its backing comes back.
import { readdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { openPostgresStore } from '../../controller/store/postgres/postgres-store.js';
import {
  openStore,
  type Data,
  type ImageRecord,
  type Job,
  type Store,
  type StoreKind,
  type WorkerRecord,
  type Workload,
} from '../../controller/store/index.js';
import { COLLECTIONS, type Collection } from '../../controller/store/schema.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { T0, iso, tempDir, type TempDir, user } from '../unit/helpers.js';

/** One datastore under test: opened (again) on the same backing, made to fail its writes, and mended. */
interface Backing {
  open(): Promise<Store>;
  /** Every write from now on fails, as a full disk or a database gone away does. */
  breakWrites(): Promise<void>;
  mendWrites(): Promise<void>;
  remove(): Promise<void>;
}

interface Kind {
  name: StoreKind;
  setUp(): Promise<void>;
  backing(): Promise<Backing>;
  tearDown(): Promise<void>;
}

/** The journal segments of a lowdb data folder, by number. */
async function segmentNumbers(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .map((name) => /^db\.journal\.(\d+)$/.exec(name)?.[1])
    .filter((number): number is string => number !== undefined)
    .map(Number);
}

const lowdb: Kind = {
  name: 'lowdb',
  setUp: async () => undefined,
  async backing() {
    const dir: TempDir = await tempDir();
    let opened: Store | null = null;
    let full: string | null = null;
    return {
      async open() {
        opened = await openStore(dir.path);
        return opened;
      },
      async breakWrites() {
        // the store's next journal segment is /dev/full, a real device whose every write fails with ENOSPC
        const current = Math.max(0, ...(await segmentNumbers(dir.path)));
        await opened!.compact();
        full = path.join(dir.path, `db.journal.${current + 1}`);
        await symlink('/dev/full', full);
      },
      async mendWrites() {
        // room again: the store moves on to a fresh segment at its next snapshot
        if (full) await rm(full, { force: true });
        await opened!.compact();
      },
      remove: () => dir.remove(),
    };
  },
  tearDown: async () => undefined,
};

let server: TestPostgres | null = null;
const postgres: Kind = {
  name: 'postgres',
  async setUp() {
    server = await startPostgres();
  },
  async backing() {
    const url = await server!.createDatabase();
    return {
      open: () => openPostgresStore(url, { statementTimeoutMs: 5000 }),
      breakWrites: () => server!.closeDatabase(url),
      mendWrites: () => server!.openDatabase(url),
      remove: async () => undefined,
    };
  },
  async tearDown() {
    await server?.stop();
    server = null;
  },
};

function workload(id: string, extra: Partial<Workload> = {}): Workload {
  return { id, owner: 'ann', name: `name-${id}`, filter: 'blur', tags: ['a', 'b'], created_at: iso(T0), ...extra };
}

function image(id: string, seq: number, extra: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id,
    workload_id: 'w1',
    owner: 'ann',
    type: 'original',
    source_image_id: null,
    job_id: `job-${id}`,
    file: `name-w1/${id}.png`,
    mime: 'image/png',
    bytes: 1234 + seq,
    width: 640,
    height: 480,
    created_at: iso(T0 + seq),
    seq,
    ...extra,
  };
}

function job(id: string, imageId: string, extra: Partial<Job> = {}): Job {
  return {
    id,
    workload_id: 'w1',
    image_id: imageId,
    state: 'queued',
    attempts: 0,
    lease: null,
    not_before: T0,
    error: null,
    filtered_image_id: null,
    created_at: iso(T0),
    updated_at: iso(T0 + 1),
    started_at: null,
    finished_at: null,
    ...extra,
  };
}

function worker(id: string, extra: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    id,
    name: `worker-${id}`,
    instance_id: `instance-${id}`,
    tags: ['gpu'],
    rpc_address: 'tcp://127.0.0.1:41000',
    slots: 2,
    engine: 'sharp',
    filters: ['grayscale', 'blur'],
    operations: ['grayscale', 'resize'],
    formats: ['png', 'jpeg', 'webp'],
    registered_at: iso(T0),
    left_at: null,
    token: { jti: `jti-${id}`, expires_at: T0 + 3_600_123 },
    ...extra,
  };
}

/** Records of every collection, as the server writes them. */
function sample(): Partial<Data> {
  const sampleWorkloads = {
    w1: workload('w1'),
    w2: workload('w2', {
      filter: null,
      operations: [{ op: 'resize', width: 640, height: null, fit: 'inside', enlarge: false }],
      cancelled_at: iso(T0 + 99),
    }),
  };
  return {
    users: { ann: user('ann'), bob: user('bob') },
    revoked_tokens: { 'jti-old': { jti: 'jti-old', expires_at: T0 + 60_000 } },
    workers: { k1: worker('k1'), k2: worker('k2', { left_at: iso(T0 + 5), token: null }) },
    workloads: sampleWorkloads as Data['workloads'],
    images: {
      i1: image('i1', 1),
      i2: image('i2', 2),
      f1: image('f1', 3, { type: 'filtered', source_image_id: 'i1', job_id: null, mime: 'image/jpeg' }),
    },
    jobs: {
      'job-i1': job('job-i1', 'i1', {
        state: 'done',
        attempts: 1,
        filtered_image_id: 'f1',
        started_at: iso(T0 + 2),
        finished_at: iso(T0 + 3),
      }),
      'job-i2': job('job-i2', 'i2', {
        state: 'running',
        attempts: 1,
        lease: { worker_id: 'k1', lease_id: 'lease-1', expires_at: T0 + 30_017 },
        started_at: iso(T0 + 4),
      }),
    },
    worker_minutes: {
      [`k1/${T0}`]: {
        worker_id: 'k1',
        start: T0,
        samples: [{ t: T0 + 1000, cpu_load: 12.5, mem_used: 0.25, gpu_utilization: 40, gpu_memory_free_mb: 2048 }],
      },
    },
    worker_hours: {
      [`k1/${T0}`]: { worker_id: 'k1', start: T0, points: [{ t: T0, cpu_load: 10, mem_used: 0.2 }] },
    },
    upload_slots: {
      s1: {
        id: 's1',
        owner: 'ann',
        workload_id: 'w1',
        key: 'name-w1/s1.jpg',
        mime: 'image/jpeg',
        expires_at: T0 + 900_001,
      },
    },
    worker_activity: {
      k1: {
        worker_id: 'k1',
        registrations: 2,
        registered: [iso(T0), iso(T0 + 10)],
        left_at: null,
        deaths: 1,
        died: [{ at: iso(T0 + 5), back_at: iso(T0 + 9) }],
        jobs_done: 3,
        jobs_failed: 1,
        jobs_requeued: 2,
        bytes_in: 123_456_789_012,
        bytes_out: 42,
        last_seen: T0 + 11,
        resources: null,
      },
    },
  };
}

/** Puts every record of `records` into the store (each announced with change) and commits. */
async function put(store: Store, records: Partial<Data>): Promise<void> {
  for (const collection of COLLECTIONS) {
    const kept = store.data[collection] as Record<string, unknown>;
    for (const [key, record] of Object.entries(records[collection] ?? {})) {
      store.change(collection, key);
      kept[key] = structuredClone(record);
    }
  }
  await store.commit();
}

/** The store's records as plain data, optional fields that hold null dropped (the stores keep them alike). */
function contents(store: Store): Record<Collection, unknown> {
  const plain = JSON.parse(JSON.stringify(Object.fromEntries(COLLECTIONS.map((c) => [c, store.data[c]]))));
  for (const workerRecord of Object.values(plain.workers as Record<string, Record<string, unknown>>))
    if (workerRecord.token === null) delete workerRecord.token;
  for (const workloadRecord of Object.values(plain.workloads as Record<string, Record<string, unknown>>)) {
    if (workloadRecord.operations === null) delete workloadRecord.operations;
    if (workloadRecord.cancelled_at === null) delete workloadRecord.cancelled_at;
  }
  return plain;
}

for (const kind of [lowdb, postgres]) {
  describe(`datastore contract: ${kind.name}`, function () {
    this.timeout(60_000);
    let backing: Backing;
    const opened: Store[] = [];

    before(async function () {
      if (kind === postgres) skipWithoutPostgres(this);
      await kind.setUp();
    });

    after(() => kind.tearDown());

    beforeEach(async () => {
      backing = await kind.backing();
    });

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close().catch(() => undefined);
      await backing.remove();
    });

    async function open(): Promise<Store> {
      const store = await backing.open();
      opened.push(store);
      return store;
    }

    /** Closes the store and opens it again on the same backing. */
    async function reopen(store: Store): Promise<Store> {
      await store.close();
      opened.splice(opened.indexOf(store), 1);
      return open();
    }

    it('opens empty, and says what it is', async () => {
      const store = await open();
      expect(store.kind).to.equal(kind.name);
      for (const collection of COLLECTIONS) expect(store.data[collection], collection).to.deep.equal({});
    });

    it('keeps records of every collection as they were committed', async () => {
      const store = await open();
      await put(store, sample());
      const before = contents(store);
      const again = await reopen(store);
      expect(contents(again)).to.deep.equal(before);
      expect(again.originals.of('w1')).to.deep.equal(['i1', 'i2']);
      expect(again.workloadIndex.of('ann')).to.have.members(['w1', 'w2']);
    });

    it('keeps changes and deletions, a record changed twice in one commit as it was last', async () => {
      const store = await open();
      await put(store, sample());
      const running = store.data.jobs['job-i2']!;
      store.change('jobs', 'job-i2');
      running.state = 'done';
      running.lease = null;
      running.filtered_image_id = 'f9';
      store.change('jobs', 'job-i2');
      running.finished_at = iso(T0 + 50);
      store.change('users', 'bob');
      delete store.data.users.bob;
      store.change('revoked_tokens', 'jti-old');
      delete store.data.revoked_tokens['jti-old'];
      await store.commit();
      const again = await reopen(store);
      expect(again.data.jobs['job-i2']).to.deep.include({ state: 'done', lease: null, finished_at: iso(T0 + 50) });
      expect(again.data.users).to.have.keys(['ann']);
      expect(again.data.revoked_tokens).to.deep.equal({});
    });

    it('groups commits made together, and keeps each', async () => {
      const store = await open();
      await put(store, { workloads: { w1: workload('w1') } });
      const commits: Promise<void>[] = [];
      for (let index = 0; index < 200; index++) {
        const id = `img-${index}`;
        store.change('images', id);
        store.data.images[id] = image(id, index + 10);
        commits.push(store.commit({ durable: index % 2 === 0 }));
      }
      await Promise.all(commits);
      const again = await reopen(store);
      expect(Object.keys(again.data.images)).to.have.length(200);
      expect(again.originals.of('w1')).to.have.length(200);
    });

    it('writes a change made while a commit is in flight with the next commit, each as it was', async () => {
      const store = await open();
      await put(store, sample());
      const running = store.data.jobs['job-i2']!;
      store.change('jobs', 'job-i2');
      running.state = 'queued';
      running.lease = null;
      const first = store.commit();
      // the first write has begun (and waits on its backing) when the job moves on again
      await new Promise((resolve) => setImmediate(resolve));
      store.change('jobs', 'job-i2');
      running.state = 'assigned';
      running.lease = { worker_id: 'k2', lease_id: 'lease-3', expires_at: T0 + 9 };
      const second = store.commit();
      await Promise.all([first, second]);
      const again = await reopen(store);
      expect(again.data.jobs['job-i2']).to.deep.include({ state: 'assigned', lease: running.lease });
    });

    it('makes a token signing key once, and gives the same one after a reopen', async () => {
      const store = await open();
      const key = await store.signingKey();
      expect(key.length).to.be.at.least(32);
      expect((await store.signingKey()).equals(key)).to.equal(true);
      const again = await reopen(store);
      expect((await again.signingKey()).equals(key), 'the same key').to.equal(true);
    });

    it('keeps a large commit whole (5,000 images and their jobs)', async () => {
      const store = await open();
      await put(store, { workloads: { w1: workload('w1') } });
      for (let index = 0; index < 5000; index++) {
        store.change('images', `i${index}`);
        store.data.images[`i${index}`] = image(`i${index}`, index + 1);
        store.change('jobs', `job-i${index}`);
        store.data.jobs[`job-i${index}`] = job(`job-i${index}`, `i${index}`);
      }
      await store.commit();
      const again = await reopen(store);
      expect(Object.keys(again.data.images)).to.have.length(5000);
      expect(Object.keys(again.data.jobs)).to.have.length(5000);
      expect(again.data.images.i4321).to.deep.equal(image('i4321', 4322));
    });

    it('puts back a deleted record passed to changed() itself (no copy): the same object, every field', async () => {
      const store = await open();
      await put(store, sample());
      const kept = contents(store);
      await backing.breakWrites();
      const record = store.data.images.f1!;
      delete store.data.images.f1;
      store.changed('images', 'f1', record);
      const job = store.data.jobs['job-i1']!;
      delete store.data.jobs['job-i1'];
      store.changed('jobs', 'job-i1', job);
      const failure = await store.commit().then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure, 'the commit failed').to.be.instanceOf(Error);
      expect(store.data.images.f1, 'the same object').to.equal(record);
      expect(store.data.jobs['job-i1'], 'the same object').to.equal(job);
      expect(contents(store), 'every field back').to.deep.equal(kept);
      await backing.mendWrites();
    });

    it('rolls a failed commit back whole, tells the listeners, and goes on once writes work again', async () => {
      const store = await open();
      await put(store, sample());
      const kept = contents(store);
      const told: string[][] = [];
      store.onRollback((restored) => told.push([...(restored.get('jobs') ?? []), ...(restored.get('users') ?? [])]));
      await backing.breakWrites();
      const ann = store.data.users.ann!;
      store.change('users', 'ann');
      ann.password_hash = 'changed';
      store.change('users', 'cid');
      store.data.users.cid = user('cid');
      store.change('jobs', 'job-i2');
      store.data.jobs['job-i2']!.state = 'queued';
      const failure = await store.commit().then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure, 'the commit failed').to.be.instanceOf(Error);
      expect(contents(store), 'every change undone').to.deep.equal(kept);
      expect(store.data.users.ann, 'the same object, its old fields back').to.equal(ann);
      expect(told).to.have.length(1);
      expect(told[0]).to.have.members(['job-i2', 'ann', 'cid']);

      await backing.mendWrites();
      store.change('users', 'dan');
      store.data.users.dan = user('dan');
      let landed = false;
      // a PostgreSQL pool opens a new connection on the next commit; a journal the next segment
      for (let attempt = 0; attempt < 50 && !landed; attempt++) {
        landed = await store.commit().then(
          () => true,
          () => false,
        );
        if (!landed) {
          store.change('users', 'dan');
          store.data.users.dan = user('dan');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      expect(landed, 'a commit lands once writes work again').to.equal(true);
      const again = await reopen(store);
      expect(again.data.users).to.have.keys(['ann', 'bob', 'dan']);
      expect(again.data.users.ann!.password_hash).to.equal(user('ann').password_hash);
      expect(again.data.jobs['job-i2']!.state).to.equal('running');
    });
  });
}

describe('datastore contract: postgres only', function () {
  this.timeout(60_000);
  let url = '';
  let store: Store | null = null;

  before(async function () {
    skipWithoutPostgres(this);
    await postgres.setUp();
  });

  after(async () => {
    await store?.close();
    await postgres.tearDown();
  });

  beforeEach(async () => {
    url = await server!.createDatabase();
    store = await openPostgresStore(url);
  });

  afterEach(async () => {
    await store?.close();
    store = null;
  });

  it('keeps one row a record, in typed columns', async () => {
    await put(store!, sample());
    const { rows } = await server!.query(url, 'SELECT state, lease_id, lease_worker_id FROM jobs ORDER BY id');
    expect(rows).to.deep.equal([
      { state: 'done', lease_id: null, lease_worker_id: null },
      { state: 'running', lease_id: 'lease-1', lease_worker_id: 'k1' },
    ]);
  });

  it('changes a job only where it still holds the state and lease this server last wrote', async () => {
    await put(store!, sample());
    // someone else moved the job on: its lease is not the one this server holds in memory
    await server!.query(url, "UPDATE jobs SET lease_id = 'lease-2' WHERE id = 'job-i2'");
    const reloads: string[] = [];
    store!.onNeedsReload((reason) => reloads.push(reason));
    const running = store!.data.jobs['job-i2']!;
    store!.change('jobs', 'job-i2');
    running.state = 'done';
    running.lease = null;
    store!.change('users', 'eve');
    store!.data.users.eve = user('eve');
    const failure = await store!.commit().then(
      () => null,
      (error: unknown) => error,
    );
    expect(String(failure)).to.match(/changed in the database by someone else/);
    expect(store!.data.jobs['job-i2']!.state, 'rolled back in memory').to.equal('running');
    await Promise.resolve();
    expect(reloads, 'the server is told to read every record again').to.have.length(1);
    expect(reloads[0]).to.match(/job job-i2: this server last wrote it running \(lease lease-1\)/);
    expect(store!.data.users).to.not.have.key('eve');
    const { rows } = await server!.query(url, "SELECT state, lease_id FROM jobs WHERE id = 'job-i2'");
    expect(rows).to.deep.equal([{ state: 'running', lease_id: 'lease-2' }]);
    const users = await server!.query(url, "SELECT count(*)::int AS n FROM users WHERE username = 'eve'");
    expect(users.rows[0].n, 'nothing of the commit was kept').to.equal(0);
  });

  it('claims a queued job FOR UPDATE SKIP LOCKED: a row another transaction holds fails the claim now', async () => {
    await put(store!, { ...sample(), jobs: { 'job-q': job('job-q', 'i2') } });
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query("SELECT 1 FROM jobs WHERE id = 'job-q' FOR UPDATE");
      const queued = store!.data.jobs['job-q']!;
      store!.change('jobs', 'job-q');
      queued.state = 'assigned';
      queued.lease = { worker_id: 'k1', lease_id: 'lease-q', expires_at: T0 + 5000 };
      const started = Date.now();
      const failure = await store!.commit().then(
        () => null,
        (error: unknown) => error,
      );
      expect(String(failure)).to.match(/changed in the database by someone else/);
      expect(Date.now() - started, 'it did not wait for the lock').to.be.below(3000);
      expect(store!.data.jobs['job-q']!.state).to.equal('queued');
      await other.query('ROLLBACK');
      store!.change('jobs', 'job-q');
      queued.state = 'assigned';
      queued.lease = { worker_id: 'k1', lease_id: 'lease-q', expires_at: T0 + 5000 };
      await store!.commit();
      const { rows } = await server!.query(url, "SELECT state, lease_id FROM jobs WHERE id = 'job-q'");
      expect(rows).to.deep.equal([{ state: 'assigned', lease_id: 'lease-q' }]);
    } finally {
      await other.end();
    }
  });

  it('refuses to open a database it cannot reach, naming it without its password', async () => {
    const unreachable = 'postgres://dpip:s3cret@127.0.0.1:1/nowhere';
    const failure = await openPostgresStore(unreachable).then(
      () => null,
      (error: unknown) => error,
    );
    expect(String(failure)).to.contain('postgres://dpip:***@127.0.0.1:1/nowhere').and.not.contain('s3cret');
  });
});
