import { expect } from 'chai';
import { TestClient } from './helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from './helpers/images.js';
import { killAll, waitFor } from './helpers/processes.js';
import { makeDirs, spawnServer, spawnWorker, type TestDirs } from './helpers/system.js';

describe('a worker killed with SIGKILL mid-workload', function () {
  this.timeout(180_000);
  let dirs: TestDirs;

  before(async () => {
    dirs = await makeDirs();
  });

  after(async () => {
    await killAll();
    await dirs.remove();
  });

  it('the workload still completes on the other worker, one filtered image per original', async () => {
    const server = await spawnServer(dirs, ['--lease-ms', '2000', '--heartbeat-ms', '500']);
    // jimp with one slot each: every job takes long enough that the victim is surely mid-job
    const victim = spawnWorker({ controllerPort: server.controllerPort, name: 'victim', engine: 'jimp', slots: 1 });
    spawnWorker({ controllerPort: server.controllerPort, name: 'survivor', engine: 'jimp', slots: 1 });
    const client = await TestClient.login(server.url, 'alice', 'alice-pw');
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const count = 12;
    for (let index = 0; index < count; index++) {
      const upload = await client.upload(workload.workload_id, await makeTestImage(900, 700, 'image/png', index + 1), `${index}.png`, 'image/png');
      expect(upload.status).to.equal(201);
    }
    // both workers busy: one of the two running jobs is the victim's
    await waitFor('both workers to be running jobs', async () => (await client.workload(workload.workload_id)).running_jobs >= 2, 60_000, 20);
    await victim.kill('SIGKILL');

    const done = await client.waitForCompletion(workload.workload_id, 120_000);
    expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
    expect(done.filtered_images).to.have.length(count);
    expect(new Set(done.filtered_images).size).to.equal(count);
    for (const imageId of done.filtered_images) {
      const result = await client.download(imageId);
      expect(result.status).to.equal(200);
      expect(isGray(await decodeRgba(result.data))).to.equal(true);
    }
  });
});
