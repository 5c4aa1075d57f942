import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { createJob } from '../../controller/jobs/index.js';
import { openStore } from '../../controller/store/index.js';
import { JournalFile, journalLines, replayJournal } from '../../controller/store/journal.js';
import { emptyData, type Collection } from '../../controller/store/schema.js';
import { tempDir, type TempDir, user } from './helpers.js';

/** Opens the store in dataDir, adds these users, and closes it (which commits). */
async function storeUsers(dataDir: string, ...names: string[]): Promise<void> {
  const store = await openStore(dataDir);
  for (const name of names) {
    store.change('users', name);
    store.data.users[name] = user(name);
  }
  await store.close();
}

/** The snapshot's lines, parsed. */
async function snapshotLines(dataDir: string): Promise<unknown[]> {
  const text = await readFile(path.join(dataDir, 'db.snapshot'), 'utf8');
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as unknown);
}

/** Journal lines that add ann and ben, change ann, and delete ben. */
function history(): string {
  const data = emptyData();
  data.users.ann = user('ann');
  data.users.ben = user('ben');
  let text = journalLines(data, new Map([['users', new Set(['ann', 'ben'])]]));
  data.users.ann.password_hash = 'changed';
  delete data.users.ben;
  text += journalLines(data, new Map([['users', new Set(['ann', 'ben'])]]));
  return text;
}

describe('datastore: snapshot + journal', () => {
  let dir: TempDir;
  let dataDir: string;
  let journal: string;

  beforeEach(async () => {
    dir = await tempDir();
    dataDir = dir.path;
    // the first segment of a new data dir: the store writes db.journal.<n>, a new one after each snapshot
    journal = path.join(dataDir, 'db.journal.1');
  });

  afterEach(async () => {
    await dir.remove();
  });

  it('keeps every committed change across a reopen, deletions included', async () => {
    const store = await openStore(dataDir);
    for (const name of ['ann', 'ben', 'cid']) {
      store.change('users', name);
      store.data.users[name] = user(name);
    }
    await store.commit();
    store.change('users', 'ben');
    delete store.data.users.ben;
    store.change('users', 'cid');
    store.data.users.cid!.password_hash = 'changed';
    await store.commit();
    await store.close();

    const reopened = await openStore(dataDir);
    expect(Object.keys(reopened.data.users).sort()).to.deep.equal(['ann', 'cid']);
    expect(reopened.data.users.cid!.password_hash).to.equal('changed');
    await reopened.close();
  });

  it('a commit appends only what changed: its size does not grow with history', async () => {
    const store = await openStore(dataDir, { compactBytes: 1024 * 1024 * 1024 });
    const appended: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let index = 0; index < 1000; index++) {
        const name = `u${round}-${index}`;
        store.change('users', name);
        store.data.users[name] = user(name);
        await store.commit();
      }
      const before = store.stats().journalBytes;
      store.change('users', `probe${round}`);
      store.data.users[`probe${round}`] = user(`probe${round}`);
      await store.commit();
      appended.push(store.stats().journalBytes - before);
    }
    expect(appended[2]).to.equal(appended[0]);
    await store.close();
  });

  it('ignores a torn last line left by a crash, and keeps everything before it', async () => {
    await storeUsers(dataDir, 'ann');
    await appendFile(journal, '{"c":"users","k":"ben","v":{"usern');

    const reopened = await openStore(dataDir);
    expect(Object.keys(reopened.data.users)).to.deep.equal(['ann']);
    await reopened.close();
  });

  it('keeps the changes committed after a crash that tore the only line of the journal', async () => {
    await storeUsers(dataDir);
    await appendFile(journal, '{"c":"users","k":"ben","v":{"usern');
    await storeUsers(dataDir, 'ann'); // the first commit after the crash

    const reopened = await openStore(dataDir);
    expect(Object.keys(reopened.data.users)).to.deep.equal(['ann']);
    await reopened.close();
  });

  it('on open, folds what the journal holds into the snapshot and starts a new, empty journal', async () => {
    await storeUsers(dataDir, 'ann');
    expect((await stat(journal)).size).to.be.greaterThan(0);

    const reopened = await openStore(dataDir);
    expect(reopened.stats()).to.deep.equal({ journalBytes: 0, snapshots: 1, recovered: { applied: 1, skipped: 0 } });
    expect(await stat(journal).catch(() => null), 'the segment the snapshot covers is gone').to.equal(null);
    expect(await snapshotLines(dataDir)).to.deep.equal([
      { dpip_snapshot: 1 },
      { c: 'users', k: 'ann', v: user('ann') },
      { end: 1 },
    ]);
    await reopened.close();
  });

  it('folds the journal into a new snapshot once it outgrows it', async () => {
    const store = await openStore(dataDir, { compactBytes: 4096 });
    for (let index = 0; index < 200; index++) {
      store.change('users', `u${index}`);
      store.data.users[`u${index}`] = user(`u${index}`);
      await store.commit();
    }
    await store.close(); // waits for a snapshot still streaming
    expect(store.stats().snapshots).to.be.greaterThan(0);
    expect(store.stats().journalBytes).to.be.below(
      Math.max(4096, (await stat(path.join(dataDir, 'db.snapshot'))).size) + 200,
    );
    expect((await snapshotLines(dataDir)).length).to.be.greaterThan(2);
    const reopened = await openStore(dataDir);
    expect(Object.keys(reopened.data.users)).to.have.length(200);
    await reopened.close();
  });

  it('a snapshot streams in the background: a commit made meanwhile does not wait for it', async () => {
    // a journal of 200,000 records outgrows the (tiny) threshold: the commit that lands it starts a snapshot
    const store = await openStore(dataDir, { compactBytes: 1 });
    for (let index = 0; index < 200_000; index++) {
      store.change('users', `u${index}`);
      store.data.users[`u${index}`] = user(`u${index}`);
    }
    await store.commit();
    store.change('users', 'late');
    store.data.users.late = user('late');
    await store.commit();
    expect(store.stats().snapshots, 'the snapshot is still being written when the next commit lands').to.equal(0);
    await store.close();
    expect(store.stats().snapshots).to.equal(1);
    const reopened = await openStore(dataDir);
    expect(Object.keys(reopened.data.users)).to.have.length(200_001);
    await reopened.close();
  });

  it('commits made together share one write', async () => {
    const store = await openStore(dataDir);
    const commits: Promise<void>[] = [];
    for (let index = 0; index < 50; index++) {
      store.change('users', `u${index}`);
      store.data.users[`u${index}`] = user(`u${index}`);
      commits.push(store.commit());
    }
    await Promise.all(commits);
    expect(new Set(commits).size).to.be.at.most(2);
    await store.close();
  });

  describe('the journal: its lines, their replay and its file', () => {
    it('writes one line per touched record: its whole value, or a deletion once it is gone', () => {
      const data = emptyData();
      data.users.ann = user('ann');
      const job = createJob(data, 'wl', 'i1', 0);
      const changes = new Map<Collection, Set<string>>([
        ['users', new Set(['ann', 'ben'])],
        ['jobs', new Set([job.id])],
      ]);
      const text = journalLines(data, changes);
      expect(text.endsWith('\n')).to.equal(true);
      expect(
        text
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as unknown),
      ).to.deep.equal([
        { c: 'users', k: 'ann', v: user('ann') },
        { c: 'users', k: 'ben', d: 1 },
        { c: 'jobs', k: job.id, v: job },
      ]);
      expect(journalLines(data, new Map())).to.equal('');
    });

    it('replays values and deletions in order onto the snapshot, and counts the lines applied', async () => {
      const data = emptyData();
      data.users.cid = user('cid');
      expect(await replayJournal(journal, data)).to.deep.equal({ applied: 0, skipped: 0 }); // no journal yet
      await writeFile(journal, history());
      expect(await replayJournal(journal, data)).to.deep.equal({ applied: 4, skipped: 0 });
      expect(data.users).to.deep.equal({ cid: user('cid'), ann: { ...user('ann'), password_hash: 'changed' } });
    });

    it('skips a torn line in the middle and applies every valid line after it', async () => {
      const lines = history().split('\n');
      await writeFile(journal, [lines[0], lines[1]?.slice(0, 20), lines[2], lines[3], ''].join('\n'));
      const data = emptyData();
      expect(await replayJournal(journal, data)).to.deep.equal({ applied: 3, skipped: 1 });
      expect(data.users).to.deep.equal({ ann: { ...user('ann'), password_hash: 'changed' } });
    });

    it('replaying the same lines twice leaves the data as replaying them once', async () => {
      await writeFile(journal, history());
      const once = emptyData();
      await replayJournal(journal, once);
      const twice = emptyData();
      await replayJournal(journal, twice);
      await replayJournal(journal, twice);
      expect(twice).to.deep.equal(once);
    });

    it('does not apply a line keyed "__proto__": no prototype is changed', async () => {
      const lines = [
        journalLines({ ...emptyData(), users: { ann: user('ann') } }, new Map([['users', new Set(['ann'])]])),
        '{"c":"users","k":"__proto__","v":{"polluted":true}}\n',
      ];
      await writeFile(journal, lines.join(''));
      const data = emptyData();
      expect(await replayJournal(journal, data)).to.deep.equal({ applied: 1, skipped: 1 });
      expect(Object.getPrototypeOf(data.users)).to.equal(Object.prototype);
      expect(Object.keys(data.users)).to.deep.equal(['ann']);
      expect('polluted' in data.users).to.equal(false);
      expect('polluted' in {}).to.equal(false);
    });

    it('does not apply a line for an unknown collection', async () => {
      for (const collection of ['version', 'secrets', 'constructor']) {
        await writeFile(journal, `{"c":"${collection}","k":"x","v":2}\n`);
        const data = emptyData();
        expect(await replayJournal(journal, data)).to.deep.equal({ applied: 0, skipped: 1 });
        expect(data).to.deep.equal(emptyData());
      }
    });

    it('appends to what the file holds, also after a close, and counts the bytes; truncate empties it', async () => {
      await writeFile(journal, 'before\n');
      const file = new JournalFile(journal);
      file.append('one\n');
      file.close();
      file.append('two\n');
      file.close();
      expect(await readFile(journal, 'utf8')).to.equal('before\none\ntwo\n');
      expect(file.bytes, 'the size of the file').to.equal(15);
      await file.truncate();
      expect(await readFile(journal, 'utf8')).to.equal('');
      expect(file.bytes).to.equal(0);
      file.append('three\n');
      file.close();
      expect(await readFile(journal, 'utf8')).to.equal('three\n');
    });
  });
});
