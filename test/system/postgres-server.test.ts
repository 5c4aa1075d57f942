// The whole server on a PostgreSQL datastore (--datastore postgres://...): the course flow with a real worker,
// everything still there after the server is killed and started again, and a database that goes away answered
// 503 without a crash, then used again by itself.
import { readdir } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { postgresSuite } from '../helpers/postgres.js';
import { waitFor, type Spawned } from '../helpers/processes.js';
import { spawnServer, spawnWorker } from '../helpers/system.js';

/** A simple-protocol COMMIT as node-postgres sends it: 'Q', its length (11), the text, a NUL. */
const COMMIT = Buffer.from([0x51, 0, 0, 0, 11, ...Buffer.from('COMMIT'), 0]);

/**
 * A TCP proxy in front of PostgreSQL that, once armed, lets the next transaction that writes an image row
 * commit and then cuts its connection before the answer to its COMMIT reaches the server: a commit that was
 * kept, whose outcome the server cannot know.
 */
async function commitCutter(
  database: string,
): Promise<{ url: string; arm(): void; cut: Promise<void>; close(): Promise<void> }> {
  const target = new URL(database);
  let armed = false;
  let cutDone: () => void = () => undefined;
  const cut = new Promise<void>((resolve) => {
    cutDone = resolve;
  });
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let seen = '';
    let writesImages = false;
    let committed = false;
    client.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString('latin1')).slice(-8192);
      if (armed && /INSERT INTO "images"/.test(seen)) writesImages = true;
      if (writesImages && chunk.includes(COMMIT)) {
        armed = false;
        writesImages = false;
        committed = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!committed) return void client.write(chunk);
      // the database answered the COMMIT: it is kept; the server never hears it
      client.destroy();
      upstream.destroy();
      cutDone();
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(socket);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(database);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    arm: () => {
      armed = true;
    },
    cut,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('server on PostgreSQL', function () {
  this.timeout(120_000);
  const suite = postgresSuite();

  async function server(url: string): Promise<{ url: string; controllerPort: number; process: Spawned }> {
    const running = await spawnServer(suite.dirs, ['--datastore', url]);
    suite.started.push(running.process);
    return running;
  }

  it('runs the course flow, and keeps everything in the database across a killed server', async () => {
    const database = await suite.postgres.createDatabase();
    const first = await server(database);
    suite.started.push(
      spawnWorker({ controllerPort: first.controllerPort, name: 'pg-worker', imagesDir: suite.dirs.imagesDir }),
    );
    const alice = await TestClient.login(first.url, 'alice', 'alice-pw');
    const workload = await alice.createWorkload({ filter: 'grayscale' });
    const uploaded: string[] = [];
    for (let seed = 1; seed <= 3; seed++) {
      const upload = await alice.upload(
        workload.workload_id,
        await makeTestImage(96, 64, 'image/png', seed),
        'a.png',
        'image/png',
      );
      expect(upload.status).to.equal(201);
      uploaded.push(upload.body.image_id!);
    }
    await alice.waitForCompletion(workload.workload_id);
    const listed = async (client: TestClient, type: string): Promise<string[]> => {
      const answer = await client.call('GET', `/images?workload_id=${workload.workload_id}`);
      expect(answer.status).to.equal(200);
      const images = answer.body.images as { image_id: string; type: string }[];
      return images.filter((image) => image.type === type).map((image) => image.image_id);
    };
    const filtered = await listed(alice, 'filtered');
    expect(filtered).to.have.length(3);

    // the rows are there, in typed columns: views are answered from the records in memory, so the commit of the
    // last completions may still be on its way when the workload shows completed (each worker's report was
    // answered only once its commit was in)
    const jobStates = async (): Promise<unknown[]> =>
      (await suite.postgres.query(database, 'SELECT state, count(*)::int AS n FROM jobs GROUP BY state')).rows;
    await waitFor(
      'every job done in the database',
      async () => JSON.stringify(await jobStates()) === JSON.stringify([{ state: 'done', n: 3 }]),
      10_000,
      20,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}: ${JSON.stringify(await jobStates())}`);
    });
    // and the data folder keeps no datastore of its own, nor the signing key (the database has it)
    const kept = await readdir(suite.dirs.dataDir).catch(() => []);
    expect(kept.filter((name) => name.startsWith('db.') || name === 'jwt-secret')).to.deep.equal([]);

    await first.process.kill('SIGKILL');
    const second = await server(database);
    const again = await TestClient.login(second.url, 'alice', 'alice-pw');
    const view = await again.workload(workload.workload_id);
    expect(view.status).to.equal('completed');
    expect(await listed(again, 'filtered')).to.have.members(filtered);
    const download = await again.download(filtered[0]!);
    expect(download.status).to.equal(200);
    expect(isGray(await decodeRgba(download.data), 2)).to.equal(true);
    expect(await listed(again, 'original')).to.have.members(uploaded);
  });

  it('reads every record again when a job was changed behind its back, instead of going on from memory', async () => {
    const database = await suite.postgres.createDatabase();
    const running = await server(database);
    const alice = await TestClient.login(running.url, 'alice', 'alice-pw');
    const workload = await alice.createWorkload({ filter: 'grayscale' });
    const image = await makeTestImage(32, 32, 'image/png', 1);
    expect((await alice.upload(workload.workload_id, image, 'a.png', 'image/png')).status).to.equal(201);
    expect((await alice.workload(workload.workload_id)).queued_jobs).to.equal(1);

    // someone else fails the queued job in the database
    await suite.postgres.query(
      database,
      "UPDATE jobs SET state = 'failed', error = 'failed by hand', attempts = 1, finished_at = now() " +
        'WHERE workload_id = $1',
      [workload.workload_id],
    );
    // the cancel's guarded write finds the job not as the server wrote it: nothing is kept, and 503
    const cancel = await alice.cancelWorkload(workload.workload_id);
    expect(cancel.status).to.equal(503);
    expect(String((cancel.body.error as { message: string }).message)).to.match(/changed in the database/);
    // the server steps down and leads again, reading every record: it now says what the database says
    const view = await waitFor(
      'the server to read the job again',
      async () => {
        const answer = await fetch(`${running.url}/workloads/${workload.workload_id}`, { headers: alice.headers() });
        if (answer.status !== 200) return null;
        const body = (await answer.json()) as { failed_jobs: number; queued_jobs: number };
        return body.failed_jobs === 1 ? body : null;
      },
      30_000,
    );
    expect(view.queued_jobs).to.equal(0);
    expect(running.process.output()).to.match(/stepping down/);
  });

  it('a commit whose answer was lost: 503, then the server reads its records again, the upload there', async () => {
    const database = await suite.postgres.createDatabase();
    const cutter = await commitCutter(database);
    try {
      const running = await server(cutter.url);
      suite.started.push(
        spawnWorker({ controllerPort: running.controllerPort, name: 'pg-worker', imagesDir: suite.dirs.imagesDir }),
      );
      const alice = await TestClient.login(running.url, 'alice', 'alice-pw');
      const workload = await alice.createWorkload({ filter: 'grayscale' });
      cutter.arm();
      const upload = await alice.upload(
        workload.workload_id,
        await makeTestImage(48, 32, 'image/png', 7),
        'a.png',
        'image/png',
      );
      await cutter.cut;
      expect(upload.status, JSON.stringify(upload.body)).to.equal(503);
      expect(JSON.stringify(upload.body)).to.match(/may have been kept/);
      const rows = await suite.postgres.query(database, "SELECT id FROM images WHERE type = 'original'");
      expect(rows.rows, 'the database kept it').to.have.length(1);
      // the server steps down and reads every record again: the image is there, with its file, and is filtered
      const done = await waitFor(
        'the kept upload to be filtered',
        async () => {
          const answer = await fetch(`${running.url}/workloads/${workload.workload_id}`, { headers: alice.headers() });
          if (answer.status !== 200) return null;
          const body = (await answer.json()) as { total_images: number; done_jobs: number; failed_jobs: number };
          return body.done_jobs + body.failed_jobs === 1 ? body : null;
        },
        60_000,
      );
      expect(done).to.include({ total_images: 1, done_jobs: 1, failed_jobs: 0 });
      expect(running.process.output()).to.match(/stepping down/);
    } finally {
      await cutter.close();
    }
  });

  it('answers 503 while the database is away, keeps nothing half-done, and goes on when it is back', async () => {
    const database = await suite.postgres.createDatabase();
    const running = await server(database);
    const alice = await TestClient.login(running.url, 'alice', 'alice-pw');
    const kept = await alice.createWorkload({ filter: 'blur' });

    /** POST /workloads until `done` says stop: every status answered (0 for a connection refused). */
    const create = async (done: (status: number) => boolean, tries: number): Promise<number[]> => {
      const statuses: number[] = [];
      for (let attempt = 0; attempt < tries; attempt++) {
        const answer = await fetch(`${running.url}/workloads`, {
          method: 'POST',
          headers: { ...alice.headers(), 'content-type': 'application/json' },
          body: JSON.stringify({ filter: 'grayscale', name: 'while-away' }),
        }).catch(() => null);
        statuses.push(answer?.status ?? 0);
        if (answer && answer.status !== 201) {
          const body = (await answer.json()) as { error: { message: string } };
          expect(body.error.message, 'a 503 says why').to.match(/datastore/i);
        }
        if (done(statuses.at(-1)!)) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return statuses;
    };

    await suite.postgres.closeDatabase(database);
    // the server steps down (its lock connection is gone): its port stays open and answers 503, never refuses
    const away = await create((status) => status === 503, 50);
    expect(away, 'answers while the database is away').to.deep.equal([503]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await create(() => true, 1))[0], 'still 503 a second later').to.equal(503);
    expect(running.process.child.exitCode, 'the server is still running').to.equal(null);

    await suite.postgres.openDatabase(database);
    const back = await create((status) => status === 201, 150);
    expect(back.at(-1), `answers once the database is back: ${back.join(', ')}`).to.equal(201);
    expect(
      back.filter((status) => status !== 503 && status !== 201),
      'never refused',
    ).to.deep.equal([]);
    const names = await suite.postgres.query(database, 'SELECT name FROM workloads ORDER BY name');
    expect(names.rows.map((row: { name: string }) => row.name)).to.have.members([kept.workload_name, 'while-away']);
  });
});
