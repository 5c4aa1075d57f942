// Jobs a worker takes beyond its slots (--prefetch). One that dies holding a job it had taken beyond its slots and
// never started: that job goes back at no cost (no attempt spent), the one it was running costs its attempt, and
// another worker then does both (SIGKILL). And --prefetch auto, the default: a worker whose jobs are short takes
// more, tells the server with its heartbeats, and GET /workers shows it; one long job brings it back to 1. Real
// server, real worker processes, real images.
import { expect } from 'chai';
import type { Server } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { makePhotoLikeImage, makeTestImage } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { liveWorker } from '../helpers/restart.js';
import { makeDirs, spawnWorker, startTestServer, type TestDirs } from '../helpers/system.js';

describe('jobs taken beyond the slots (--prefetch)', function () {
  this.timeout(120_000);
  let dirs: TestDirs | null = null;
  let server: Server | null = null;

  afterEach(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  it('a worker killed while one waits: it goes back at no cost, the running one costs its attempt', async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: 2000, heartbeatMs: 300 });
    const s = started.server;
    server = s;
    const alice = await TestClient.login(started.url, 'alice', 'alice-pw');
    // one slot and one job beyond it (--prefetch auto, the default: 1 until a job has ended), on the jimp engine
    const victim = spawnWorker({
      controllerPort: started.config.controller.port,
      name: 'victim',
      engine: 'jimp',
      slots: 1,
    });
    await waitFor('the worker to register', async () => liveWorker(s, 'victim')?.state === 'alive', 30_000, 20);
    // sixteen blurs of a large photo on jimp: seconds (a blur of it alone is about 0.3 s), while the second,
    // small, waits on the worker from its upload on
    const workload = await alice.createWorkload({ operations: Array.from({ length: 16 }, () => ({ op: 'blur' })) });
    const images = [await makePhotoLikeImage(2400, 1800, 1), await makePhotoLikeImage(64, 48, 2)];
    for (const [index, image] of images.entries())
      expect((await alice.upload(workload.workload_id, image, `${index}.png`, 'image/png')).status).to.equal(201);
    const jobs = () =>
      Object.values(s.controller.store.data.jobs).filter((job) => job.workload_id === workload.workload_id);
    // both held by it, and a heartbeat since has said which one waits
    const waitingLease = await waitFor(
      'one job running on the worker and one waiting on it, as its heartbeat says',
      async () => {
        const held = jobs().filter((job) => job.lease?.worker_id === liveWorker(s, 'victim')?.record.id);
        const waiting = [...(liveWorker(s, 'victim')?.waiting ?? [])];
        return held.length === 2 && waiting.length === 1 ? waiting[0] : null;
      },
      60_000,
      20,
    );
    const waitingJob = jobs().find((job) => job.lease?.lease_id === waitingLease)!.id;
    const runningJob = jobs().find((job) => job.id !== waitingJob)!.id;
    await victim.kill('SIGKILL');

    await waitFor('both jobs back in the queue', async () => jobs().every((job) => job.lease === null), 30_000, 50);
    const after = new Map(jobs().map((job) => [job.id, job]));
    expect(after.get(waitingJob)!.attempts, 'the waiting job: no attempt spent').to.equal(0);
    expect(after.get(waitingJob)!.error).to.match(/stopped sending heartbeats; the job had not started there/);
    expect(after.get(runningJob)!.attempts, 'the running job: its attempt spent').to.equal(1);
    expect(after.get(runningJob)!.error).to.match(/stopped sending heartbeats$/);

    spawnWorker({ controllerPort: started.config.controller.port, name: 'rescuer', engine: 'sharp' });
    const done = await alice.waitForCompletion(workload.workload_id, 60_000);
    expect(done).to.include({ done_jobs: 2, failed_jobs: 0 });
  });

  it('auto takes several beyond its slot for small images, and one again after a long job', async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: 2000, heartbeatMs: 200 });
    const s = started.server;
    server = s;
    const alice = await TestClient.login(started.url, 'alice', 'alice-pw');
    spawnWorker({ controllerPort: started.config.controller.port, name: 'auto', engine: 'sharp', slots: 1 });
    await waitFor('the worker to register', async () => liveWorker(s, 'auto')?.state === 'alive', 30_000, 20);
    const shown = async (): Promise<number> => {
      const { body } = await alice.call('GET', '/workers');
      const workers = body.workers as Array<{ name: string; prefetch: number }>;
      return workers.find((worker) => worker.name === 'auto')!.prefetch;
    };
    expect(await shown(), 'before any job has ended: one').to.equal(1);

    const small = await alice.createWorkload({ filter: 'grayscale' });
    for (let index = 0; index < 30; index++) {
      const image = await makeTestImage(64, 64, 'image/png', index + 1);
      expect((await alice.upload(small.workload_id, image, `${index}.png`, 'image/png')).status).to.equal(201);
    }
    expect(await alice.waitForCompletion(small.workload_id, 60_000)).to.include({ done_jobs: 30, failed_jobs: 0 });
    const many = await waitFor(
      'a heartbeat to tell a prefetch above 1',
      async () => ((liveWorker(s, 'auto')?.prefetch ?? 0) > 1 ? liveWorker(s, 'auto')!.prefetch : null),
      10_000,
      20,
    );
    expect(many).to.be.within(2, 16);
    expect(await shown(), 'GET /workers shows what the worker takes now').to.equal(many);

    // sixteen blurs of a large photo: far longer than 20 ms
    const slow = await alice.createWorkload({ operations: Array.from({ length: 16 }, () => ({ op: 'blur' })) });
    const photo = await makePhotoLikeImage(1600, 1200, 1);
    expect((await alice.upload(slow.workload_id, photo, 'photo.png', 'image/png')).status).to.equal(201);
    expect(await alice.waitForCompletion(slow.workload_id, 60_000)).to.include({ done_jobs: 1, failed_jobs: 0 });
    await waitFor('a heartbeat to tell a prefetch of 1', async () => liveWorker(s, 'auto')?.prefetch === 1, 10_000, 20);
    expect(await shown()).to.equal(1);
  });
});
