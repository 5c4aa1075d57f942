import { appendFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { openStore } from '../../controller/store/index.js';
import { makeDirs, type TestDirs } from '../helpers/system.js';

function user(name: string): { username: string; password_hash: string; created_at: string } {
  return { username: name, password_hash: `hash-of-${name}`, created_at: new Date(0).toISOString() };
}

describe('datastore: snapshot + journal', () => {
  let dirs: TestDirs;

  beforeEach(async () => {
    dirs = await makeDirs();
  });

  afterEach(async () => {
    await dirs.remove();
  });

  it('keeps every committed change across a reopen, deletions included', async () => {
    const store = await openStore(dirs.dataDir);
    for (const name of ['ann', 'ben', 'cid']) {
      store.data.users[name] = user(name);
      store.touch('users', name);
    }
    await store.commit();
    delete store.data.users.ben;
    store.touch('users', 'ben');
    store.data.users.cid!.password_hash = 'changed';
    store.touch('users', 'cid');
    await store.commit();
    await store.close();

    const reopened = await openStore(dirs.dataDir);
    expect(Object.keys(reopened.data.users).sort()).to.deep.equal(['ann', 'cid']);
    expect(reopened.data.users.cid!.password_hash).to.equal('changed');
    await reopened.close();
  });

  it('a commit appends only what changed: its size does not grow with history', async () => {
    const store = await openStore(dirs.dataDir, { compactBytes: 1024 * 1024 * 1024 });
    const appended: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let index = 0; index < 1000; index++) {
        const name = `u${round}-${index}`;
        store.data.users[name] = user(name);
        store.touch('users', name);
        await store.commit();
      }
      const before = store.stats().journalBytes;
      store.data.users[`probe${round}`] = user(`probe${round}`);
      store.touch('users', `probe${round}`);
      await store.commit();
      appended.push(store.stats().journalBytes - before);
    }
    expect(appended[2]).to.equal(appended[0]);
    await store.close();
  });

  it('ignores a torn last line left by a crash, and keeps everything before it', async () => {
    const store = await openStore(dirs.dataDir);
    store.data.users.ann = user('ann');
    store.touch('users', 'ann');
    await store.commit();
    await store.close();
    await appendFile(path.join(dirs.dataDir, 'db.journal'), '{"c":"users","k":"ben","v":{"usern');

    const reopened = await openStore(dirs.dataDir);
    expect(Object.keys(reopened.data.users)).to.deep.equal(['ann']);
    await reopened.close();
  });

  it('folds the journal into a new snapshot once it outgrows it', async () => {
    const store = await openStore(dirs.dataDir, { compactBytes: 4096 });
    for (let index = 0; index < 200; index++) {
      store.data.users[`u${index}`] = user(`u${index}`);
      store.touch('users', `u${index}`);
      await store.commit();
    }
    expect(store.stats().snapshots).to.be.greaterThan(0);
    expect(store.stats().journalBytes).to.be.below(
      Math.max(4096, (await stat(path.join(dirs.dataDir, 'db.json'))).size) + 200,
    );
    const snapshot = JSON.parse(await readFile(path.join(dirs.dataDir, 'db.json'), 'utf8')) as {
      users: Record<string, unknown>;
    };
    expect(Object.keys(snapshot.users).length).to.be.greaterThan(0);
    await store.close();
    const reopened = await openStore(dirs.dataDir);
    expect(Object.keys(reopened.data.users)).to.have.length(200);
    await reopened.close();
  });

  it('commits made together share one write', async () => {
    const store = await openStore(dirs.dataDir);
    const commits: Promise<void>[] = [];
    for (let index = 0; index < 50; index++) {
      store.data.users[`u${index}`] = user(`u${index}`);
      store.touch('users', `u${index}`);
      commits.push(store.commit());
    }
    await Promise.all(commits);
    expect(new Set(commits).size).to.be.at.most(2);
    await store.close();
  });
});
