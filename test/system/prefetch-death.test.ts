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

  /** A server whose leases last 2 s, heartbeats every `heartbeatMs`, and its user alice. */
  async function startServer(heartbeatMs: number) {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: 2000, heartbeatMs });
    server = started.server;
    return { started, s: started.server, alice: await TestClient.login(started.url, 'alice', 'alice-pw') };
  }

  it('a worker killed while one waits: it goes back at no cost, the running one costs its attempt', async () => {
    const { started, s, alice } = await startServer(300);
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

  it('auto takes several beyond its slots for small images, and one again after long jobs', async () => {
    const { started, s, alice } = await startServer(200);
    spawnWorker({ controllerPort: started.config.controller.port, name: 'auto', engine: 'sharp', slots: 4 });
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
    // four slots: jobs of up to 40 ms (a busy machine's download and grey of 64x64) still count as short. A
    // heartbeat sent before the last jobs' lengths were learnt may be followed by one more: wait until it settles
    const told = (): number => liveWorker(s, 'auto')?.prefetch ?? 0;
    const many = await waitFor(
      'a heartbeat to tell a prefetch above 1, shown by GET /workers',
      async () => (told() > 1 && (await shown()) === told() ? told() : null),
      10_000,
      20,
    );
    expect(many).to.be.within(2, 16);
    expect(await shown(), 'GET /workers shows what the worker takes now').to.equal(told());

    // sixteen blurs of a large photo, three of them: each far longer than the 40 ms that four slots allow one
    const slow = await alice.createWorkload({ operations: Array.from({ length: 16 }, () => ({ op: 'blur' })) });
    for (const seed of [1, 2, 3]) {
      const photo = await makePhotoLikeImage(1600, 1200, seed);
      expect((await alice.upload(slow.workload_id, photo, `${seed}.png`, 'image/png')).status).to.equal(201);
    }
    expect(await alice.waitForCompletion(slow.workload_id, 60_000)).to.include({ done_jobs: 3, failed_jobs: 0 });
    await waitFor('a heartbeat to tell a prefetch of 1', async () => liveWorker(s, 'auto')?.prefetch === 1, 10_000, 20);
    expect(await shown()).to.equal(1);
  });
});
