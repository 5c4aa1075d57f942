// Each worker's resource history and activity, kept in the datastore: GET /workers and GET /workers/{id}
// on a real server process and a real worker process, across a clean server restart and a killed one.
import { expect } from 'chai';
import type { ImageView, WorkerDetailView, WorkerView } from '../../common/views.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import {
  pickServerPorts,
  spawnServerOn,
  spawnWorkerProcess,
  type RunningServer,
  type ServerPorts,
} from '../helpers/restart.js';
import { makeDirs, type TestDirs } from '../helpers/system.js';

const SERVER_FLAGS = ['--lease-ms', '2000', '--heartbeat-ms', '500'];
const IMAGES = 4;

describe('worker history and activity, kept in the datastore', function () {
  this.timeout(90_000);
  let dirs: TestDirs;
  let ports: ServerPorts;
  let server: RunningServer;
  let worker: Spawned;
  let client: TestClient;
  let workerId: string;
  /** Sizes of the originals (what the worker downloaded) and of their results (what it uploaded). */
  const bytes = { originals: 0, results: 0 };

  async function get<T>(path: string): Promise<{ status: number; body: T }> {
    const response = await fetch(`${server.url}${path}`, { headers: client.headers() });
    return { status: response.status, body: (await response.json()) as T };
  }

  const listed = async (): Promise<WorkerView | undefined> =>
    (await get<{ workers: WorkerView[] }>('/workers')).body.workers.find((item) => item.name === 'act-1');
  const detail = async (): Promise<WorkerDetailView> => {
    const { status, body } = await get<WorkerDetailView>(`/workers/${workerId}`);
    expect(status, JSON.stringify(body)).to.equal(200);
    return body;
  };

  /** Stops the server the way it is asked to, and starts it again on the same data and ports. */
  async function restart(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    await server.process.kill(signal);
    server = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
    client = await TestClient.login(server.url, 'alice', 'alice-pw');
  }

  before(async () => {
    dirs = await makeDirs();
    ports = await pickServerPorts();
    server = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
    worker = spawnWorkerProcess({ controllerPort: ports.controllerPort, name: 'act-1', slots: 2 });
    client = await TestClient.login(server.url, 'alice', 'alice-pw');
    workerId = (await waitFor('act-1 to register', async () => (await listed())?.worker_id, 20_000)) ?? '';
  });

  after(async () => {
    await killAll();
    await dirs?.remove();
  });

  it('counts the jobs a worker did and the bytes it moved, in GET /workers', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    for (let index = 0; index < IMAGES; index++) {
      const image = await makeTestImage(80 + 16 * index, 60, 'image/png', index + 1);
      expect((await client.upload(workload.workload_id, image, `${index}.png`, 'image/png')).status).to.equal(201);
    }
    const done = await client.waitForCompletion(workload.workload_id, 30_000);
    expect(done.done_jobs, JSON.stringify(done.failures)).to.equal(IMAGES);
    const images = (await get<{ images: ImageView[] }>(`/images?workload_id=${workload.workload_id}`)).body.images;
    for (const image of images) bytes[image.type === 'original' ? 'originals' : 'results'] += image.bytes;

    const view = (await listed())!;
    expect(view.activity).to.deep.equal({
      registrations: 1,
      deaths: 0,
      jobs_done: IMAGES,
      jobs_failed: 0,
      jobs_requeued: 0,
      bytes_in: bytes.results,
      bytes_out: bytes.originals,
    });
    expect(view.gpu.present).to.be.a('boolean');
    expect(view.history.length).to.be.at.least(1);
  });

  it('shows one worker in GET /workers/{id}: its history and its whole activity; 404 for an unknown id', async () => {
    await waitFor('three heartbeats in the history', async () => (await detail()).history.length >= 3, 10_000);
    const view = await detail();
    expect(view.name).to.equal('act-1');
    expect(view.state).to.equal('alive');
    expect(view.history.length).to.be.at.least(3);
    for (const sample of view.history) {
      expect(sample.cpu_load).to.be.within(0, 100);
      expect(sample.mem_used).to.be.within(0, 1);
    }
    expect(view.history_by_minute).to.be.an('array');
    expect(view.activity).to.include({ registrations: 1, jobs_done: IMAGES, left_at: null });
    expect(view.activity.registered).to.have.length(1);
    expect(view.activity.died).to.deep.equal([]);

    expect((await get(`/workers/${crypto.randomUUID()}`)).status).to.equal(404);
    expect((await get('/workers/__proto__')).status).to.equal(404);
    expect((await fetch(`${server.url}/workers/${workerId}`)).status).to.equal(401);
  });

  it('records a worker declared dead and back again', async () => {
    worker.child.kill('SIGSTOP');
    try {
      await waitFor('act-1 to be declared dead', async () => (await listed())?.state === 'dead', 10_000);
    } finally {
      worker.child.kill('SIGCONT');
    }
    await waitFor('act-1 to be back', async () => (await listed())?.state === 'alive', 10_000);
    const { activity } = await detail();
    expect(activity.deaths).to.equal(1);
    expect(activity.died).to.have.length(1);
    expect(Date.parse(activity.died[0]!.back_at ?? '')).to.be.above(Date.parse(activity.died[0]!.at));
  });

  it('keeps history and activity across a clean restart of the server', async () => {
    const before = await detail();
    const restartedAt = Date.now();
    await restart('SIGTERM');
    // before the worker is back: what the store kept
    const kept = await detail();
    expect(kept.activity).to.deep.include({ jobs_done: IMAGES, bytes_in: bytes.results, bytes_out: bytes.originals });
    expect(kept.activity.deaths).to.equal(1);
    expect(kept.history.map((sample) => sample.t)).to.include.members(before.history.map((sample) => sample.t));

    await waitFor('act-1 to register again', async () => (await listed())?.state === 'alive', 20_000);
    const view = (await listed())!;
    expect(view.worker_id, 'the same worker process keeps its record').to.equal(workerId);
    expect(view.activity).to.include({ registrations: 2, jobs_done: IMAGES, bytes_out: bytes.originals });
    expect(view.history[0]!.t, 'samples from before the restart').to.be.below(restartedAt);
  });

  it('keeps what the store had, and each registration as it happened, when the server is killed', async () => {
    await restart('SIGKILL');
    await waitFor('act-1 to register again', async () => (await listed())?.state === 'alive', 20_000);
    const view = await detail();
    expect(view.activity).to.include({ registrations: 3, jobs_done: IMAGES, deaths: 1 });
    expect(view.activity.registered).to.have.length(3);
  });

  it('shows a worker that left, which GET /workers no longer lists', async () => {
    await worker.kill('SIGTERM');
    await waitFor('act-1 to leave', async () => (await listed()) === undefined, 10_000);
    const view = await detail();
    expect(view.state).to.equal('left');
    expect(view.activity.left_at).to.be.a('string');
    expect(view.activity.jobs_done).to.equal(IMAGES);
    expect(view.history.length).to.be.at.least(2);
  });
});
