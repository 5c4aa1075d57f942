// dpip-import: a system that kept its records in lowdb's files moves them into PostgreSQL. A real server on lowdb
// with a real worker makes the records, the command imports them, and a server on the database goes on from them:
// the same workloads, images and results, the tokens signed before still good, new work done.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { postgresSuite } from '../helpers/postgres.js';
import { DIST_BIN, spawnNode, type Spawned } from '../helpers/processes.js';
import { spawnServer, spawnWorker } from '../helpers/system.js';

/** Runs dpip-import to its end: its exit code and what it printed. */
async function runImport(args: string[]): Promise<{ code: number | null; output: string }> {
  const run = spawnNode(path.join(DIST_BIN, 'dpip-import.js'), args);
  const { code } = await run.exited;
  return { code, output: run.output() };
}

/** Every file of the folder (not its subfolders) and a hash of its content. */
async function folderState(dir: string): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    state[entry.name] = createHash('sha256')
      .update(await readFile(path.join(dir, entry.name)))
      .digest('hex');
  }
  return state;
}

describe('dpip-import: lowdb records into PostgreSQL', function () {
  this.timeout(120_000);
  const suite = postgresSuite();

  async function server(args: string[] = []): Promise<{ url: string; controllerPort: number; process: Spawned }> {
    const running = await spawnServer(suite.dirs, args);
    suite.started.push(running.process);
    suite.started.push(
      spawnWorker({ controllerPort: running.controllerPort, name: 'import-worker', imagesDir: suite.dirs.imagesDir }),
    );
    return running;
  }

  it('moves every record and the signing key; a server on the database goes on from them', async () => {
    const lowdb = await server();
    const alice = await TestClient.login(lowdb.url, 'alice', 'alice-pw');
    const done = await alice.createWorkload({ filter: 'grayscale' });
    for (let seed = 1; seed <= 3; seed++) {
      const image = await makeTestImage(48, 32, 'image/png', seed);
      expect((await alice.upload(done.workload_id, image, `${seed}.png`, 'image/png')).status).to.equal(201);
    }
    await alice.waitForCompletion(done.workload_id);
    const cancelled = await alice.createWorkload({ filter: 'blur', tags: ['nobody'] });
    const queued = await makeTestImage(40, 40, 'image/png', 9);
    expect((await alice.upload(cancelled.workload_id, queued, 'q.png', 'image/png')).status).to.equal(201);
    expect((await alice.cancelWorkload(cancelled.workload_id)).status).to.equal(200);
    const before = {
      done: await alice.workload(done.workload_id),
      cancelled: await alice.workload(cancelled.workload_id),
      images: (await alice.call('GET', `/images?workload_id=${done.workload_id}`)).body.images,
    };
    const result = (before.images as { image_id: string; type: string }[]).find((image) => image.type === 'filtered')!;
    const resultBytes = (await alice.download(result.image_id)).data;
    await Promise.all(suite.started.splice(0).map((process) => process.kill('SIGTERM')));
    const lowdbFiles = await folderState(suite.dirs.dataDir);

    const database = await suite.postgres.createDatabase();
    const imported = await runImport(['--data-dir', suite.dirs.dataDir, '--datastore', database]);
    expect(imported.code, imported.output).to.equal(0);
    expect(imported.output).to.match(/imported 2 users, .*2 workloads, 7 images, 4 jobs/);
    // the lowdb files are read, never changed
    expect(await folderState(suite.dirs.dataDir)).to.deep.equal(lowdbFiles);
    const counts = await suite.postgres.query(
      database,
      'SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM images)::int AS images, ' +
        '(SELECT count(*) FROM jobs)::int AS jobs',
    );
    expect(counts.rows[0]).to.deep.equal({ users: 2, images: 7, jobs: 4 });

    const pg = await server(['--datastore', database]);
    // the token alice had from the lowdb server is still good: the signing key came along
    const same = new TestClient(pg.url, alice.token);
    expect(await same.workload(done.workload_id)).to.deep.equal(before.done);
    expect(await same.workload(cancelled.workload_id)).to.deep.equal(before.cancelled);
    expect((await same.call('GET', `/images?workload_id=${done.workload_id}`)).body.images).to.deep.equal(
      before.images,
    );
    const download = await same.download(result.image_id);
    expect(download.status).to.equal(200);
    expect(Buffer.compare(download.data, resultBytes)).to.equal(0);
    // and new work runs on it
    const next = await same.createWorkload({ filter: 'grayscale' });
    const image = await makeTestImage(30, 20, 'image/png', 4);
    const upload = await same.upload(next.workload_id, image, 'n.png', 'image/png');
    expect(upload.status).to.equal(201);
    const finished = await same.waitForCompletion(next.workload_id);
    expect(finished.done_jobs).to.equal(1);
    const filtered = finished.filtered_images[0]!;
    expect(isGray(await decodeRgba((await same.download(filtered)).data), 2)).to.equal(true);
  });

  it('refuses a database a server has used, and one of no lowdb datastore, changing nothing', async () => {
    const database = await suite.postgres.createDatabase();
    // a server on the database first: it creates the configured users
    const used = await server(['--datastore', database]);
    await used.process.kill('SIGTERM');
    const before = (await suite.postgres.query(database, 'SELECT username FROM users ORDER BY username')).rows;
    expect(before).to.have.length(2);

    const lowdb = await server();
    await TestClient.login(lowdb.url, 'alice', 'alice-pw');
    await Promise.all(suite.started.splice(0).map((process) => process.kill('SIGTERM')));
    const refused = await runImport(['--data-dir', suite.dirs.dataDir, '--datastore', database]);
    expect(refused.code).to.equal(1);
    expect(refused.output).to.include('nothing was imported into the PostgreSQL datastore at postgres://');
    expect(refused.output).to.include(
      'the database holds records already (2 users): import into a new, empty database',
    );
    expect((await suite.postgres.query(database, 'SELECT username FROM users ORDER BY username')).rows).to.deep.equal(
      before,
    );

    const empty = await suite.postgres.createDatabase();
    const nothing = await runImport(['--data-dir', path.join(suite.dirs.root, 'no-such-dir'), '--datastore', empty]);
    expect(nothing.code).to.equal(1);
    expect(nothing.output).to.match(/cannot read the data dir .*no-such-dir/);
    const bare = await runImport(['--data-dir', suite.dirs.imagesDir, '--datastore', empty]);
    expect(bare.code).to.equal(1);
    expect(bare.output).to.include('holds no lowdb datastore');
    const notPostgres = await runImport(['--data-dir', suite.dirs.dataDir, '--datastore', 'lowdb']);
    expect(notPostgres.code).to.equal(1);
    expect(notPostgres.output).to.include('the PostgreSQL database to import into');
    expect(
      (await suite.postgres.query(empty, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'users'")).rows,
    ).to.deep.equal([{ n: 0 }]);
  });
});
