// Two servers, one PostgreSQL database and one bucket, two workers given both controllers, all on loopback. The
// leader is killed in the middle of a workload: the other takes over, the workers follow it, and every image
// accepted is filtered exactly once. The course flow passes through either server before and after.
import { expect } from 'chai';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { freePorts } from '../helpers/ports.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { setEnv, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { SseClient } from '../helpers/sse.js';
import { launchServer, makeDirs, spawnWorker, type TestDirs } from '../helpers/system.js';

interface Node {
  name: string;
  apiPort: number;
  controllerPort: number;
  url: string;
  dirs: TestDirs;
  process: Spawned | null;
}

/** The original ids of a workload, and each one's filtered image (null while it has none). */
async function resultsOf(client: TestClient, workloadId: string): Promise<Map<string, string | null>> {
  const answer = await client.call('GET', `/images?workload_id=${workloadId}`);
  expect(answer.status).to.equal(200);
  const images = answer.body.images as { image_id: string; type: string; filtered_image_id?: string | null }[];
  return new Map(
    images
      .filter((image) => image.type === 'original')
      .map((image) => [image.image_id, image.filtered_image_id ?? null]),
  );
}

describe('two servers on one database and one bucket', function () {
  this.timeout(180_000);
  let postgres: TestPostgres | null = null;
  let s3: TestS3Server | null = null;
  let restoreEnv: () => void = () => undefined;
  let database = '';
  const nodes: Node[] = [];

  before(async function () {
    skipWithoutPostgres(this);
    postgres = await startPostgres();
    database = await postgres.createDatabase();
    s3 = await startS3Server({ bucket: 'dpip-shared' });
    restoreEnv = setEnv(s3.env);
    for (const name of ['a', 'b'])
      nodes.push({
        name,
        apiPort: await freePorts(1),
        controllerPort: await freePorts(3),
        url: '',
        dirs: await makeDirs(),
        process: null,
      });
  });

  afterEach(function () {
    // what the servers said, when it went wrong: the one place to see why a takeover did not happen
    if (this.currentTest?.state !== 'failed') return;
    for (const node of nodes) console.log(`--- server ${node.name}:\n${node.process?.output().slice(-6000) ?? ''}`);
  });

  after(async () => {
    await killAll();
    for (const node of nodes) await node.dirs.remove();
    await s3?.close();
    await postgres?.stop();
    restoreEnv();
  });

  /** Starts a server of the pair (it leads if no other does, else forwards to the one that does). */
  async function start(node: Node): Promise<void> {
    const args = ['--port', String(node.apiPort), '--controller-port', String(node.controllerPort)];
    args.push('--datastore', database, '--image-store', 's3', '--s3-bucket', s3!.bucket);
    args.push('--s3-endpoint', s3!.endpoint, '--s3-force-path-style', '--log-level', 'info');
    const launched = await launchServer(node.dirs, args);
    node.process = launched.process;
    node.url = `http://127.0.0.1:${node.apiPort}`;
    await waitFor(
      `server ${node.name} to listen`,
      async () => (await fetch(`${node.url}/status`).catch(() => null))?.status === 401,
      30_000,
    );
  }

  /** Which server leads: the one that answers without forwarding. */
  async function leaderOf(client: TestClient): Promise<Node> {
    for (const node of nodes) {
      const child = node.process?.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const answer = await fetch(`${node.url}/status`, { headers: client.headers() }).catch(() => null);
      if (answer?.status === 200 && answer.headers.get('x-dpip-forwarded-to-leader') === null) return node;
    }
    throw new Error('no server leads');
  }

  /** The course flow through `via`: a workload, three uploads, the results, one of them downloaded and checked. */
  async function courseFlow(via: Node): Promise<void> {
    const client = await TestClient.login(via.url, 'alice', 'alice-pw');
    const workload = await client.createWorkload({ filter: 'grayscale' });
    for (let seed = 1; seed <= 3; seed++) {
      const image = await makeTestImage(80, 60, 'image/png', seed);
      expect((await client.upload(workload.workload_id, image, `${seed}.png`, 'image/png')).status).to.equal(201);
    }
    const done = await client.waitForCompletion(workload.workload_id, 60_000);
    expect(done.filtered_images).to.have.length(3);
    const download = await client.download(done.filtered_images[0]!);
    expect(download.status).to.equal(200);
    expect(isGray(await decodeRgba(download.data), 2)).to.equal(true);
  }

  it('keeps working through a killed leader: every accepted image filtered exactly once', async () => {
    const [a, b] = nodes as [Node, Node];
    await start(a);
    await start(b);
    const controllers = nodes.map((node) => `127.0.0.1:${node.controllerPort}`);
    for (const name of ['w1', 'w2'])
      spawnWorker({ controllerPort: a.controllerPort, controllers, name, slots: 2, env: s3!.env });
    const alice = await TestClient.login(b.url, 'alice', 'alice-pw');
    expect((await leaderOf(alice)).name, 'the first server started leads').to.equal('a');

    // the course flow through either server, before
    await courseFlow(b);
    await courseFlow(a);

    // live events through the server that does not lead: a forwarded stream
    const streamToken = await fetch(`${b.url}/events/token`, { method: 'POST', headers: alice.headers() });
    expect(streamToken.status).to.equal(200);
    const events = await SseClient.open(b.url, ((await streamToken.json()) as { url: string }).url);
    expect(events.response.headers['x-dpip-forwarded-to-leader']).to.equal('1');
    expect((await events.next<{ user: string }>('hello')).user).to.equal('alice');

    // a workload of 40 images, uploaded through the server that does not lead; the leader dies half-way
    const workload: WorkloadBody = await alice.createWorkload({ filter: 'blur' });
    await events.next<{ workload_id: string }>('workload', (data) => data.workload_id === workload.workload_id);
    events.close();
    // large enough that the workers take a few seconds over them all
    const frames = await Promise.all([1, 2, 3, 4].map((seed) => makeTestImage(1600, 1200, 'image/png', seed)));
    const accepted: string[] = [];
    for (let first = 0; first < 40; first += 8) {
      const uploads = await Promise.all(
        [...Array(8).keys()].map((index) =>
          alice.upload(workload.workload_id, frames[(first + index) % 4]!, `${first + index}.png`, 'image/png'),
        ),
      );
      for (const upload of uploads) expect(upload.status).to.equal(201);
      accepted.push(...uploads.map((upload) => upload.body.image_id!));
    }
    // an upload slot given out by the leader, its bytes put, confirmed only after the leader is gone
    const slotAnswer = await fetch(`${a.url}/uploads`, {
      method: 'POST',
      headers: { ...alice.headers(), 'content-type': 'application/json' },
      body: JSON.stringify({ workload_id: workload.workload_id, content_type: 'image/png', bytes: frames[0]!.length }),
    });
    expect(slotAnswer.status).to.equal(201);
    const slot = (await slotAnswer.json()) as {
      image_id: string;
      upload: { url: string; headers: Record<string, string> };
      confirm: string;
    };
    const put = await fetch(slot.upload.url, { method: 'PUT', headers: slot.upload.headers, body: frames[0]! });
    expect(put.status).to.equal(200);
    await waitFor('some results', async () => (await alice.workload(workload.workload_id)).done_jobs >= 4, 60_000, 20);
    const doneAtKill = (await alice.workload(workload.workload_id)).done_jobs;
    expect(doneAtKill, 'the leader dies in the middle of the workload').to.be.below(accepted.length);
    const killedAt = Date.now();
    await a.process!.kill('SIGKILL');
    await waitFor('b to lead', async () => (await leaderOf(alice).catch(() => null))?.name === 'b', 30_000);
    const tookOver = Date.now() - killedAt;
    const confirmed = await fetch(`${b.url}${slot.confirm}`, { method: 'POST', headers: alice.headers() });
    expect(confirmed.status, 'the new leader honours the slot the old one gave out').to.equal(201);
    accepted.push(slot.image_id);
    const done = await alice.waitForCompletion(workload.workload_id, 120_000);
    console.log(
      `      b led ${tookOver} ms after a was killed; the workload completed ${Date.now() - killedAt} ms after`,
    );

    expect(done.failed_jobs).to.equal(0);
    const results = await resultsOf(alice, workload.workload_id);
    expect([...results.keys()]).to.have.members(accepted);
    const filtered = [...results.values()];
    expect(
      filtered.every((id) => id !== null),
      'every original has its result',
    ).to.equal(true);
    expect(new Set(filtered).size, 'one result each, none shared').to.equal(accepted.length);
    // exactly once in the bucket too: the originals and one result each, nothing left of a lost lease
    const keys = (await s3!.objectKeys()).filter((key) => key.startsWith(`${done.workload_name}/`));
    expect(keys).to.have.length(accepted.length * 2);
    const rows = await postgres!.query(
      database,
      "SELECT count(*)::int AS n FROM images WHERE workload_id = $1 AND type = 'filtered'",
      [workload.workload_id],
    );
    expect(rows.rows[0].n).to.equal(accepted.length);
    const attempts = await postgres!.query(
      database,
      'SELECT attempts, count(*)::int AS jobs FROM jobs WHERE workload_id = $1 GROUP BY attempts ORDER BY attempts',
      [workload.workload_id],
    );
    const runs = attempts.rows.map((row: { attempts: number; jobs: number }) => `${row.jobs} x ${row.attempts}`);
    console.log(`      ${doneAtKill} of ${accepted.length} done at the kill; jobs x attempts: ${runs.join(', ')}`);
    // the leases held at the kill were honoured: what was running then finished under its first attempt, its
    // result taken by the new leader, not filtered a second time
    expect(runs, 'no job ran twice').to.deep.equal([`${accepted.length} x 1`]);

    // the course flow through either server, after: a comes back and forwards to b
    await start(a);
    await courseFlow(a);
    await courseFlow(b);
    expect((await leaderOf(alice)).name, 'b still leads').to.equal('b');
  });
});
