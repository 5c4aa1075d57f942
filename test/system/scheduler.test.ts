import { expect } from 'chai';
import { connectRpc } from '../../common/bus/index.js';
import { CONTROLLER_METHODS, registerResultSchema, type RegisterParams } from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import type { Server } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { freePorts } from '../helpers/ports.js';
import { killAll } from '../helpers/processes.js';
import { makeDirs, spawnWorker, startTestServer, TEST_SECRET, type TestDirs } from '../helpers/system.js';

describe('scheduler', function () {
  this.timeout(90_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let controllerPort: number;

  before(async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: 2000, heartbeatMs: 400 });
    server = started.server;
    url = started.url;
    controllerPort = started.config.controller.port;
  });

  after(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  it('a registered worker that cannot be reached costs the jobs no attempts: they complete elsewhere', async () => {
    // a "worker" that registers, advertises a port nobody listens on, and never heartbeats
    const bus = connectRpc(`tcp://127.0.0.1:${rpcPortOf({ port: controllerPort })}`);
    const ghost: RegisterParams = {
      secret: TEST_SECRET,
      name: 'ghost',
      instance_id: 'ghost-1',
      tags: [],
      rpc_address: `tcp://127.0.0.1:${await freePorts()}`,
      slots: 8,
      engine: 'jimp',
      filters: ['grayscale', 'blur'],
      resources: {
        cpu_load: 0,
        cores: 64,
        mem_free: 1e12,
        mem_total: 1e12,
        gpu: { present: true, memory_total_mb: 1e5, memory_free_mb: 1e5 },
      },
      running: [],
    };
    await bus.call(CONTROLLER_METHODS.register, ghost, registerResultSchema);
    bus.close();

    const client = await TestClient.login(url, 'alice', 'alice-pw');
    const workload = await client.createWorkload();
    for (let index = 0; index < 8; index++) {
      expect(
        (
          await client.upload(
            workload.workload_id,
            await makeTestImage(64, 64, 'image/png', index + 1),
            `${index}.png`,
            'image/png',
          )
        ).status,
      ).to.equal(201);
    }
    spawnWorker({ controllerPort, name: 'real', engine: 'sharp', slots: 2 });
    const done = await client.waitForCompletion(workload.workload_id, 60_000);
    expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
    expect(done.filtered_images).to.have.length(8);
    for (const job of Object.values(server.controller.store.data.jobs))
      expect(job.attempts, `job ${job.id} attempts`).to.equal(1);
  });
});
