// The datastore's files on disk: readable by the server's user only (they hold password hashes and
// secrets), and a damaged snapshot (what a disk that lied about a sync leaves after a power loss)
// stops the server with a message that says which file and what to do, not a bare parse error.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { openStore, type Store } from '../../controller/store/index.js';
import { waitFor } from '../helpers/processes.js';
import { freshDirsEachTest, launchServer, spawnServer } from '../helpers/system.js';

function modeOf(info: { mode: number }): string {
  return (info.mode & 0o777).toString(8);
}

/** 2,000 workload ids: with their padding, about 1 MB of records. */
const IDS = Array.from({ length: 2000 }, (_unused, index) => `w-${index}`);

async function addWorkloads(store: Store, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    store.change('workloads', id);
    store.data.workloads[id] = {
      id,
      owner: 'ann',
      name: id,
      filter: 'grayscale',
      tags: ['x'.repeat(400)],
      created_at: new Date().toISOString(),
    };
  }
  await store.commit();
}

async function deleteWorkloads(store: Store, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    store.change('workloads', id);
    delete store.data.workloads[id];
  }
  await store.commit();
}

/** Every file of the data folder, in bytes. */
async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(path.join(dir, name))).size;
  return total;
}

describe('datastore files', function () {
  this.timeout(60_000);
  const fresh = freshDirsEachTest();

  it('creates the data folder 0700, and the snapshot, the journal and the signing key 0600', async () => {
    const first = await spawnServer(fresh.dirs); // --users creates alice and bob: a commit, so a journal
    await first.process.kill('SIGTERM');
    const second = await spawnServer(fresh.dirs); // folds the journal into a snapshot at start
    const register = await fetch(`${second.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'carol', password: 'carol-secret' }),
    });
    expect(register.status).to.equal(201);
    await second.process.kill('SIGTERM');
    expect(modeOf(await stat(fresh.dirs.dataDir)), 'data folder').to.equal('700');
    const files = await readdir(fresh.dirs.dataDir);
    expect(files).to.include.members(['db.snapshot', 'jwt-secret']);
    expect(
      files.some((name) => /^db\.journal\.\d+$/.test(name)),
      `a journal segment in ${files}`,
    ).to.equal(true);
    for (const name of files) {
      expect(modeOf(await stat(path.join(fresh.dirs.dataDir, name))), name).to.equal('600');
    }
  });

  for (const file of ['db.snapshot', 'db.json']) {
    it(`refuses to start on an empty ${file}, saying which file and what to do`, async () => {
      await mkdir(fresh.dirs.dataDir, { recursive: true });
      await writeFile(path.join(fresh.dirs.dataDir, file), '');
      const server = (await launchServer(fresh.dirs)).process;
      const { code } = await server.exited;
      expect(code).to.equal(1);
      expect(server.output()).to.include(`${file} cannot be read: it is empty`);
      expect(server.output()).to.include('Restore it from a backup, or move it aside');
    });
  }

  it('shrinks back once idle after deletions: the journal of the deleted folds into a small snapshot', async () => {
    const store = await openStore(fresh.dirs.dataDir, { idleCompactMs: 100 });
    try {
      await addWorkloads(store, IDS);
      await deleteWorkloads(store, IDS);
      const before = await sizeOf(fresh.dirs.dataDir);
      expect(before, 'the journal holds both').to.be.greaterThan(800_000);
      await waitFor('a snapshot once idle', async () => store.stats().snapshots >= 1, 10_000, 50);
      await waitFor('the old journal gone', async () => (await sizeOf(fresh.dirs.dataDir)) < 16 * 1024, 10_000, 50);
    } finally {
      await store.close();
    }
    const reopened = await openStore(fresh.dirs.dataDir);
    expect(Object.keys(reopened.data.workloads)).to.deep.equal([]);
    await reopened.close();
  });

  it('rewrites a large snapshot once idle when most of its records were deleted since', async () => {
    const first = await openStore(fresh.dirs.dataDir);
    await addWorkloads(first, IDS);
    await first.compact();
    await first.close();
    // the snapshot holds the 2,000 records; deleting them journals a short line each, far less than it
    const store = await openStore(fresh.dirs.dataDir, { idleCompactMs: 100 });
    try {
      await deleteWorkloads(store, IDS);
      expect(await sizeOf(fresh.dirs.dataDir), 'the snapshot of the deleted records').to.be.greaterThan(800_000);
      await waitFor(
        'a small snapshot once idle',
        async () => (await sizeOf(fresh.dirs.dataDir)) < 16 * 1024,
        10_000,
        50,
      );
    } finally {
      await store.close();
    }
  });
});
