// A commit lands whole or not at all. The journal here is /dev/full, a real device whose every write
// fails with ENOSPC: what a full disk does to an append.
import { readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { JobBook } from '../../controller/job-book.js';
import { DEFAULT_RETRY_POLICY } from '../../controller/jobs/index.js';
import { JournalFile } from '../../controller/store/journal.js';
import { emptyData, type Collection } from '../../controller/store/schema.js';
import { openStore, type Store } from '../../controller/store/index.js';
import { T0, tempDir, type TempDir, user } from './helpers.js';

describe('datastore: a commit that fails is undone whole', () => {
  let dir: TempDir;

  beforeEach(async () => {
    dir = await tempDir();
  });

  afterEach(async () => {
    await dir.remove();
  });

  /** A store whose snapshot holds cid, and whose journal cannot take a byte. */
  async function fullStore(): Promise<Store> {
    await writeFile(path.join(dir.path, 'db.json'), JSON.stringify({ ...emptyData(), users: { cid: user('cid') } }));
    const store = await openStore(dir.path);
    // the open folded the older db.json into a snapshot and covered journal segment 1: appends go to 2
    await symlink('/dev/full', path.join(dir.path, 'db.journal.2'));
    return store;
  }

  it('puts every record back as it was before its change, keeps objects in place, and says which', async () => {
    const store = await fullStore();
    const cid = store.data.users.cid!;
    const restored: Map<Collection, readonly string[]>[] = [];
    store.onRollback((keys) => restored.push(new Map(keys)));
    store.change('users', 'ann');
    store.data.users.ann = user('ann');
    store.change('users', 'cid');
    cid.password_hash = 'changed';
    store.change('users', 'cid'); // a second change of one record keeps its first before-image
    cid.created_at = 'also changed';

    const failure = await store.commit().then(
      () => null,
      (error: unknown) => error,
    );
    expect((failure as NodeJS.ErrnoException).code).to.equal('ENOSPC');
    expect(Object.keys(store.data.users)).to.deep.equal(['cid']);
    expect(store.data.users.cid, 'the same object, with its old fields').to.equal(cid);
    expect(cid).to.deep.equal(user('cid'));
    expect(restored).to.have.length(1);
    expect([...restored[0]!.get('users')!].sort()).to.deep.equal(['ann', 'cid']);
  });

  it('takes back a new original from the upload-order index, and a job from the queue and the holders', async () => {
    const store = await fullStore();
    const book = new JobBook(store, DEFAULT_RETRY_POLICY, 5000, 600_000, {}, () => T0);
    const job = book.create('wl', 'image-1');
    store.change('images', 'image-1');
    store.data.images['image-1'] = {
      id: 'image-1',
      workload_id: 'wl',
      owner: 'ann',
      type: 'original',
      source_image_id: null,
      job_id: job.id,
      file: 'wl/image-1.png',
      mime: 'image/png',
      bytes: 10,
      width: 1,
      height: 1,
      created_at: new Date(T0).toISOString(),
      seq: store.originals.nextSeq(),
    };
    store.originals.add('wl', 'image-1');
    expect(book.assign(job.id, 'w1').ok).to.equal(true);

    await store.commit().catch(() => undefined);
    expect(store.data.jobs).to.deep.equal({});
    expect(store.data.images).to.deep.equal({});
    expect(store.originals.of('wl')).to.deep.equal([]);
    expect([...book.ready(T0)]).to.deep.equal([]);
    expect(book.leasedCount()).to.equal(0);
    expect(book.tally.counts(), 'the tally forgets the job too').to.deep.equal({
      queued: 0,
      assigned: 0,
      running: 0,
      done: 0,
      failed: 0,
      cancelled: 0,
    });
    expect(store.workloadIndex.size).to.equal(0);
  });

  it('answers the commits waiting behind the failed one with the same failure', async () => {
    const store = await fullStore();
    store.change('users', 'ann');
    store.data.users.ann = user('ann');
    const first = store.commit();
    const second = store.commit(); // the same group: nothing was written for either
    const outcomes = await Promise.allSettled([first, second]);
    expect(outcomes.map((outcome) => outcome.status)).to.deep.equal(['rejected', 'rejected']);
    expect(store.data.users.ann).to.equal(undefined);
  });

  it('a journal append that fails leaves the file as it was: no half line', async () => {
    const file = path.join(dir.path, 'journal');
    await writeFile(file, 'kept\n');
    const journal = new JournalFile(file);
    journal.append('one\n');
    expect(journal.bytes).to.equal(9);
    journal.cutBack(5);
    expect(await readFile(file, 'utf8')).to.equal('kept\n');
    journal.close();
    const full = new JournalFile('/dev/full');
    expect(() => full.append('x'.repeat(10_000))).to.throw(/ENOSPC/);
    full.close();
  });
});
