import { expect } from 'chai';
import type { JobChange } from '../../controller/job-book.js';
import { createJob } from '../../controller/jobs/index.js';
import { openStore, type JobState, type Store, type WorkerRecord } from '../../controller/store/index.js';
import { emptyData } from '../../controller/store/schema.js';
import { ACTIVITY_WRITE_MS, WorkerActivityBook } from '../../controller/workers/index.js';
import { iso, T0, tempDir, type TempDir } from './helpers.js';

const RESOURCES = { cpu_load: 10, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } };

function workerRecord(id: string): WorkerRecord {
  return {
    id,
    name: id,
    instance_id: `instance-${id}`,
    tags: [],
    rpc_address: 'tcp://127.0.0.1:1',
    slots: 1,
    engine: 'jimp',
    filters: ['blur'],
    registered_at: iso(T0),
    left_at: null,
  };
}

/** A job change as the job book reports it: the job entered `state` from `from`, held by `holder` before. */
function change(state: JobState, from: JobState | null, holder: string | null): JobChange {
  const job = { ...createJob(emptyData(), 'wl', 'i', T0), state };
  return { job, from, since: T0, holder, lease: holder ? 'lease-1' : null };
}

describe('worker activity in the datastore', () => {
  let dir: TempDir;
  let store: Store;
  let book: WorkerActivityBook;
  let writes: number;

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore(dir.path);
    for (const id of ['w1', 'w2']) {
      store.change('workers', id);
      store.data.workers[id] = workerRecord(id);
    }
    book = new WorkerActivityBook(store);
    writes = 0;
    const change = store.change.bind(store);
    (store as { change: Store['change'] }).change = (collection, key) => {
      if (collection === 'worker_activity') writes += 1;
      change(collection, key);
    };
  });

  afterEach(async () => {
    await store.close();
    await dir.remove();
  });

  it('counts the jobs a worker finished, failed for good and lost, from the job changes', () => {
    book.jobChanged(change('done', 'running', 'w1'));
    book.jobChanged(change('done', 'assigned', 'w1'));
    book.jobChanged(change('failed', 'running', 'w1'));
    book.jobChanged(change('queued', 'running', 'w1')); // a retryable failure, a release
    book.jobChanged(change('queued', 'assigned', 'w1')); // declined or unreachable: not its doing
    book.jobChanged(change('running', 'assigned', 'w1'));
    book.jobChanged(change('queued', null, null)); // a new job
    book.jobChanged(change('done', 'running', 'w2'));
    book.jobChanged(change('done', 'running', 'no-such-worker'));
    expect(book.view('w1')).to.include({ jobs_done: 2, jobs_failed: 1, jobs_requeued: 1 });
    expect(book.view('w2')).to.include({ jobs_done: 1, jobs_failed: 0, jobs_requeued: 0 });
    expect(book.view('no-such-worker')).to.equal(null);
  });

  it('counts bytes out (originals it downloaded) and in (results it uploaded)', () => {
    book.sentTo('w1', 1000);
    book.sentTo('w1', 500);
    book.receivedFrom('w1', 300);
    expect(book.view('w1')).to.include({ bytes_out: 1500, bytes_in: 300 });
  });

  it('writes counts at most once a minute, not per job or heartbeat', () => {
    book.registered('w1', T0);
    expect(writes, 'the registration, at once').to.equal(1);
    for (let second = 1; second < 60; second++) {
      book.heard('w1', RESOURCES, T0 + second * 1000);
      book.jobChanged(change('done', 'running', 'w1'));
      book.sentTo('w1', 10);
      expect(book.tick(T0 + second * 1000)).to.equal(false);
    }
    expect(writes).to.equal(1);
    expect(store.data.worker_activity.w1).to.include({ jobs_done: 0, bytes_out: 0 });
    expect(book.tick(T0 + ACTIVITY_WRITE_MS)).to.equal(true);
    expect(writes).to.equal(2);
    expect(store.data.worker_activity.w1).to.include({ jobs_done: 59, bytes_out: 590, last_seen: T0 + 59_000 });
    // nothing changed since: nothing written
    expect(book.tick(T0 + 3 * ACTIVITY_WRITE_MS)).to.equal(false);
    expect(writes).to.equal(2);
  });

  it('writes registrations, deaths, returns and leaving as they happen, with their times', () => {
    book.registered('w1', T0);
    book.died('w1', T0 + 10_000);
    book.back('w1', T0 + 12_000);
    book.died('w1', T0 + 20_000);
    book.registered('w1', T0 + 30_000);
    book.left('w1', T0 + 40_000);
    expect(writes).to.equal(6);
    expect(store.data.worker_activity.w1).to.deep.include({
      registrations: 2,
      registered: [iso(T0), iso(T0 + 30_000)],
      deaths: 2,
      died: [
        { at: iso(T0 + 10_000), back_at: iso(T0 + 12_000) },
        { at: iso(T0 + 20_000), back_at: null },
      ],
      left_at: iso(T0 + 40_000),
    });
  });

  it('keeps the newest 20 registration times and deaths, and counts them all', () => {
    for (let index = 0; index < 25; index++) {
      book.registered('w1', T0 + index * 1000);
      book.died('w1', T0 + index * 1000 + 500);
    }
    const activity = book.view('w1')!;
    expect([activity.registrations, activity.deaths]).to.deep.equal([25, 25]);
    expect(activity.registered).to.have.length(20);
    expect(activity.registered[0]).to.equal(iso(T0 + 5000));
    expect(activity.died).to.have.length(20);
  });

  it('is there after a clean restart, counts included, and counts on from there', async () => {
    book.registered('w1', T0);
    book.jobChanged(change('done', 'running', 'w1'));
    book.receivedFrom('w1', 123);
    book.heard('w1', RESOURCES, T0 + 5000);
    book.flush(T0 + 5000);
    await store.close();

    store = await openStore(dir.path);
    book = new WorkerActivityBook(store);
    expect(book.view('w1')).to.deep.include({
      registrations: 1,
      jobs_done: 1,
      bytes_in: 123,
      last_seen: T0 + 5000,
      resources: RESOURCES,
    });
    book.jobChanged(change('done', 'running', 'w1'));
    expect(book.view('w1')).to.include({ jobs_done: 2 });
  });

  it('forgets a worker that left once it is written, and still shows it from the store', () => {
    book.registered('w1', T0);
    book.left('w1', T0 + 1000);
    book.jobChanged(change('queued', 'running', 'w1')); // released as it left
    book.tick(T0 + 1000 + ACTIVITY_WRITE_MS);
    expect(store.data.worker_activity.w1).to.include({ jobs_requeued: 1 });
    book.tick(T0 + 2000 + ACTIVITY_WRITE_MS);
    expect(book.view('w1')).to.include({ jobs_requeued: 1, left_at: iso(T0 + 1000) });
  });
});
