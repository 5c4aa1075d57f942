// A worker given the addresses of two servers (--controller a,b) follows the one that announces: it works for
// server A; when A is killed and server B starts on the other address, the same worker process, not restarted,
// registers with B and works for it within seconds. While the one it follows announces, it stays with it.
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { freePorts } from '../helpers/ports.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { logLines } from '../helpers/restart.js';
import { makeDirs, spawnServer, spawnWorker, type TestDirs } from '../helpers/system.js';

const IMAGES = 4;

/** A workload of IMAGES small images on the server at `url`; its id. */
async function uploadWorkload(url: string, seed: number): Promise<{ client: TestClient; workloadId: string }> {
  const client = await TestClient.login(url, 'alice', 'alice-pw');
  const workload = await client.createWorkload({ filter: 'grayscale' });
  for (let index = 0; index < IMAGES; index++) {
    const image = await makeTestImage(96, 64, 'image/png', seed + index);
    const upload = await client.upload(workload.workload_id, image, `${index}.png`, 'image/png');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
  }
  return { client, workloadId: workload.workload_id };
}

describe('a worker given several controllers follows the one that announces', function () {
  this.timeout(120_000);
  const dirs: TestDirs[] = [];

  afterEach(async () => {
    await killAll();
    await Promise.all(dirs.splice(0).map((dir) => dir.remove()));
  });

  it('works for server A, then, A killed, for server B on the other address, without a restart', async () => {
    // each controller binds its port and the next two: freePorts gives two runs that do not overlap
    const portA = await freePorts(3);
    const portB = await freePorts(3);
    const [dirsA, dirsB] = [await makeDirs(), await makeDirs()];
    dirs.push(dirsA, dirsB);
    const controllers = [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`];

    const serverA = await spawnServer(dirsA, [], { controllerPort: portA });
    const worker = spawnWorker({ controllerPort: portA, controllers, name: 'follower', slots: 2, logLevel: 'info' });
    const onA = await uploadWorkload(serverA.url, 1);
    const doneA = await onA.client.waitForCompletion(onA.workloadId, 60_000);
    expect(doneA.failed_jobs, JSON.stringify(doneA.failures)).to.equal(0);
    expect(doneA.done_jobs).to.equal(IMAGES);

    const killedAt = Date.now();
    await serverA.process.kill('SIGKILL');
    const serverB = await spawnServer(dirsB, [], { controllerPort: portB });
    const listeningAt = Date.now();
    const onB = await uploadWorkload(serverB.url, 100);
    await waitFor(
      "the worker to start on B's first job",
      async () => {
        const view = await onB.client.workload(onB.workloadId);
        return view.running_jobs + view.done_jobs > 0;
      },
      30_000,
      50,
    );
    const startedAt = Date.now();
    const sinceListening = startedAt - listeningAt;
    console.log(
      `      the worker started on B's first job ${(sinceListening / 1000).toFixed(1)} s after B listened, ` +
        `${((startedAt - killedAt) / 1000).toFixed(1)} s after A was killed`,
    );
    expect(sinceListening).to.be.below(15_000);
    const doneB = await onB.client.waitForCompletion(onB.workloadId, 60_000);
    expect(doneB.failed_jobs, JSON.stringify(doneB.failures)).to.equal(0);
    expect(doneB.done_jobs).to.equal(IMAGES);

    // the same process throughout, registered with A, then with B, each named by its own host:port
    expect(worker.child.exitCode, worker.output()).to.equal(null);
    const registered = logLines(worker.output()).filter((line) => line.msg === 'registered');
    expect(registered.map((line) => line.controller)).to.deep.equal(controllers);
    expect(registered[1]?.api).to.equal(serverB.url);
  });

  it('stays with the controller it registered with while it announces, though another announces too', async () => {
    const portA = await freePorts(3);
    const portB = await freePorts(3);
    const [dirsA, dirsB] = [await makeDirs(), await makeDirs()];
    dirs.push(dirsA, dirsB);
    const controllers = [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`];

    const serverA = await spawnServer(dirsA, [], { controllerPort: portA });
    const worker = spawnWorker({ controllerPort: portA, controllers, name: 'steady', slots: 2, logLevel: 'info' });
    const registrations = (): unknown[] =>
      logLines(worker.output())
        .filter((line) => line.msg === 'registered')
        .map((line) => line.controller);
    await waitFor('the worker to register with A', async () => registrations().length > 0, 20_000);
    await spawnServer(dirsB, [], { controllerPort: portB });
    // both announce now, for longer than the silence after which a controller counts as gone
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const onA = await uploadWorkload(serverA.url, 200);
    const done = await onA.client.waitForCompletion(onA.workloadId, 60_000);
    expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
    expect(registrations(), worker.output()).to.deep.equal([controllers[0]]);
    expect(logLines(worker.output()).filter((line) => line.msg?.startsWith('following another'))).to.deep.equal([]);
  });
});
