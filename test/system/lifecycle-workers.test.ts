// Cancelling and deleting workloads while real worker processes run their jobs: nothing of a deleted
// workload is left under the images space, no job comes back, and the workers go on serving the others.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Server } from '../../bin/server.js';
import { connectRpc, method, serveRpc } from '../../common/bus/index.js';
import {
  assignParamsSchema,
  cancelParamsSchema,
  CONTROLLER_METHODS,
  pingResultSchema,
  registerResultSchema,
  WORKER_METHODS,
  type AcceptedResult,
} from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { makePhotoLikeImage, makeTestImage } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { freePorts } from '../helpers/ports.js';
import { makeDirs, spawnWorker, startTestServer, TEST_SECRET, type TestDirs } from '../helpers/system.js';

/** Every file under the directory, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('cancel and delete while workers run the jobs', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let photo: Buffer;

  before(async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: 20_000, heartbeatMs: 400 });
    server = started.server;
    url = started.url;
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    // the jimp engine and a blur: each job takes long enough to be caught running
    photo = await makePhotoLikeImage(640, 480, 7);
    for (const name of ['one', 'two'])
      spawnWorker({ controllerPort: started.config.controller.port, name, engine: 'jimp', slots: 2 });
    await waitFor('both workers to register', async () => server.controller.workers.alive().length === 2, 30_000);
  });

  after(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  async function busyWorkload(count: number): Promise<WorkloadBody> {
    const workload = await alice.createWorkload({ filter: 'blur' });
    for (let index = 0; index < count; index++) {
      const upload = await alice.upload(workload.workload_id, photo, `${index}.png`, 'image/png');
      expect(upload.status).to.equal(201);
    }
    return workload;
  }

  /** Waits until the workload has results and jobs running on both workers at once. */
  async function runningOnBoth(workload: WorkloadBody): Promise<void> {
    const { controller } = server;
    await waitFor(
      'jobs running on both workers, and some done',
      async () => {
        const view = await alice.workload(workload.workload_id);
        const holders = new Set(
          Object.values(controller.store.data.jobs)
            .filter((job) => job.workload_id === workload.workload_id && job.state === 'running')
            .map((job) => job.lease?.worker_id),
        );
        return view.done_jobs > 0 && holders.size === 2;
      },
      60_000,
      20,
    );
  }

  async function expectWorkersServe(): Promise<void> {
    const next = await alice.createWorkload();
    const small = await makeTestImage(64, 48, 'image/png', 9);
    for (let index = 0; index < 6; index++) await alice.upload(next.workload_id, small, `${index}.png`, 'image/png');
    const done = await alice.waitForCompletion(next.workload_id, 60_000);
    expect(done).to.include({ done_jobs: 6, failed_jobs: 0 });
    const names = server.controller.workers.alive().map((worker) => worker.record.name);
    expect(names.sort(), 'both workers alive, none taken for dead').to.deep.equal(['one', 'two']);
  }

  it('delete while jobs run on two workers: within seconds no file of it is left, and the workers go on', async () => {
    const workload = await busyWorkload(24);
    await runningOnBoth(workload);
    const deleted = await alice.deleteWorkload(workload.workload_id);
    expect(deleted.status, JSON.stringify(deleted.body)).to.equal(200);
    expect(deleted.body.cancelled_jobs as number).to.be.greaterThan(0);

    const folder = path.join(dirs.imagesDir, workload.workload_name);
    await waitFor(
      'no file of the deleted workload anywhere under the images dir',
      async () => {
        const left = (await filesUnder(dirs.imagesDir)).filter(
          (file) => file.startsWith(`${workload.workload_name}/`) || file.startsWith('.incoming/'),
        );
        return left.length === 0;
      },
      5000,
      100,
    );
    // and it stays so: the results the workers were still making are refused (410), none lands
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await readdir(folder).catch(() => null), 'its folder').to.equal(null);
    const { controller } = server;
    expect(Object.values(controller.store.data.jobs).filter((job) => job.workload_id === workload.workload_id)).to.be
      .empty;
    expect(controller.jobs.tally.counts().failed, 'no job failed for it').to.equal(0);
    await expectWorkersServe();
  });

  it('cancel while jobs run: they stop and end cancelled, the results already made stay; then delete', async () => {
    const workload = await busyWorkload(16);
    await runningOnBoth(workload);
    const cancelled = await alice.cancelWorkload(workload.workload_id);
    expect(cancelled.status).to.equal(200);
    expect(cancelled.body).to.include({ status: 'cancelled', running_jobs: 0 });
    const results = cancelled.body.filtered_images as string[];
    expect(results.length).to.be.greaterThan(0);

    // the workers stop the cancelled jobs: soon neither runs any (as each of them says)
    const { controller } = server;
    await waitFor(
      'both workers idle',
      async () => {
        for (const worker of controller.workers.alive()) {
          const client = connectRpc(worker.record.rpc_address);
          try {
            const ping = await client.call(WORKER_METHODS.ping, { token: worker.token }, pingResultSchema);
            if (ping.running > 0) return false;
          } finally {
            client.close();
          }
        }
        return true;
      },
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const later = await alice.workload(workload.workload_id);
    expect(later.filtered_images, 'no result arrives after the cancel').to.deep.equal(results);
    expect(later.status).to.equal('cancelled');
    for (const id of results) expect((await alice.download(id)).status).to.equal(200);

    const deleted = await alice.deleteWorkload(workload.workload_id);
    expect(deleted.body).to.include({ cancelled_jobs: 0, removed_images: 16 + results.length });
    await expectWorkersServe();
  });

  it('cancel: the scheduler asks the worker that holds a running job to stop it (the cancel RPC)', async () => {
    // a worker played by the test: it accepts the assignment and records every cancel it is asked for, and
    // never heartbeats (the lease is long enough), so only the scheduler's cancel call can reach it
    const port = await freePorts();
    const cancels: string[] = [];
    const stand = serveRpc(
      `tcp://127.0.0.1:${port}`,
      {
        [WORKER_METHODS.assign]: method(assignParamsSchema, (): AcceptedResult => ({ accepted: true })),
        [WORKER_METHODS.cancel]: method(cancelParamsSchema, (params): AcceptedResult => {
          cancels.push(params.job_id);
          return { accepted: true };
        }),
      },
      () => undefined,
    );
    const bus = connectRpc(`tcp://127.0.0.1:${rpcPortOf(server.controller.config)}`);
    try {
      await bus.call(
        CONTROLLER_METHODS.register,
        {
          secret: TEST_SECRET,
          name: 'stand-in',
          instance_id: 'stand-in-1',
          tags: ['stand-in'],
          rpc_address: `tcp://127.0.0.1:${port}`,
          slots: 1,
          engine: 'jimp',
          filters: ['grayscale', 'blur'],
          resources: { cpu_load: 0, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } },
          running: [],
        },
        registerResultSchema,
      );
      const workload = await alice.createWorkload({ tags: ['stand-in'] });
      const upload = await alice.upload(workload.workload_id, photo, 'a.png', 'image/png');
      const jobId = server.controller.store.data.images[String(upload.body.image_id)]?.job_id;
      await waitFor(
        'the stand-in to run the job',
        async () => server.controller.store.data.jobs[jobId!]?.state === 'running',
      );
      expect((await alice.cancelWorkload(workload.workload_id)).status).to.equal(200);
      await waitFor('the cancel call', async () => cancels.length > 0, 5000);
      expect(cancels).to.deep.equal([jobId]);
    } finally {
      bus.close();
      stand.close();
    }
  });
});
