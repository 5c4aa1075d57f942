// Issue 12, point 5: a stranger floods the controller's registration port from hundreds of connections,
// each sending messages of about 1 MiB, for 60 s, while two real worker processes run a workload with a
// 2 s lease and 0.5 s heartbeats. No worker may be declared dead, no lease may expire, and every image
// is filtered. A probe worker (registered, given no work) heartbeats every 0.5 s and the round trips are
// printed. The flood runs in its own process, on loopback, bounded in connections, bytes and time.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { z } from 'zod';
import { startServer, type Server } from '../../bin/server.js';
import { connectRpc, type RpcClient } from '../../common/bus/index.js';
import { CONTROLLER_METHODS, heartbeatResultSchema, registerResultSchema } from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { freePorts } from '../helpers/ports.js';
import { killAll, spawnNode, waitFor, type Spawned } from '../helpers/processes.js';
import { makeDirs, spawnWorker, testServerConfig, TEST_SECRET, type TestDirs } from '../helpers/system.js';

const FLOOD_SECONDS = 60;
const FLOOD_CONNECTIONS = 400;
const FLOOD_BYTES = 1024 * 1024 - 4096;
const LEASE_MS = 2000;
const HEARTBEAT_MS = 500;
const FLOOD_SCRIPT = fileURLToPath(new URL('../helpers/bus-flood.js', import.meta.url));

const RESOURCES = { cpu_load: 0, cores: 1, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } };

function percentile(sorted: number[], fraction: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

describe('a stranger flooding the bus', function () {
  this.timeout(90_000);
  let dirs: TestDirs | undefined;
  let server: Server | undefined;
  let flood: Spawned | undefined;
  const rpcs: RpcClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  let probing = true;

  after(async () => {
    probing = false;
    for (const timer of timers) clearInterval(timer);
    for (const rpc of rpcs) rpc.close();
    await flood?.kill();
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  it(
    `${FLOOD_CONNECTIONS} connections sending ~1 MiB of junk for ${FLOOD_SECONDS} s: ` +
      'no worker is declared dead, no lease expires, every image is filtered',
    async () => {
      dirs = await makeDirs();
      const config = await testServerConfig(dirs, { leaseMs: LEASE_MS, heartbeatMs: HEARTBEAT_MS });
      const logLines: { msg?: string; worker?: string }[] = [];
      server = await startServer(config, collectingLogger(logLines));
      const live = server;
      const controllerPort = config.controller.port;
      const names = ['flood-a', 'flood-b'];
      for (const name of names) spawnWorker({ controllerPort, name, slots: 2, engine: 'jimp' });
      const states = () => names.map((name) => live.controller.workers.byName(name)?.state ?? 'gone');
      await waitFor('the workers to register', async () => states().every((state) => state === 'alive'), 20_000);

      // the probe: a registered worker that can run no filter, so it gets no work; it heartbeats like a worker
      const registerPort = rpcPortOf(config.controller);
      const registration = connectRpc(`tcp://127.0.0.1:${registerPort}`, 5000);
      rpcs.push(registration);
      const reply = await registration.call(
        CONTROLLER_METHODS.register,
        {
          secret: TEST_SECRET,
          name: 'probe',
          instance_id: 'probe-1',
          tags: [],
          rpc_address: `tcp://127.0.0.1:${await freePorts()}`,
          slots: 1,
          engine: 'jimp',
          filters: ['probe-only'],
          resources: RESOURCES,
          running: [],
        },
        registerResultSchema.extend({ session_port: z.number().int().optional() }),
      );
      const sessionPort = reply.session_port ?? registerPort;
      const session = sessionPort === registerPort ? registration : connectRpc(`tcp://127.0.0.1:${sessionPort}`, 5000);
      if (session !== registration) rpcs.push(session);
      const roundTrips: number[] = [];
      let probeFailures = 0;
      void (async () => {
        while (probing) {
          const started = Date.now();
          try {
            const beat = await session.call(
              CONTROLLER_METHODS.heartbeat,
              { token: reply.token, resources: RESOURCES, running: [] },
              heartbeatResultSchema,
              10_000,
            );
            if (beat.known) roundTrips.push(Date.now() - started);
          } catch {
            probeFailures += 1;
          }
          await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS));
        }
      })();

      const samples: string[][] = [];
      timers.push(setInterval(() => samples.push(states()), 100));

      const client = await TestClient.login(`http://127.0.0.1:${live.api.port}`, 'alice', 'alice-pw');
      const { workload_id: workloadId } = await client.createWorkload({ workload_name: 'under-flood', filter: 'blur' });
      let seed = 0;
      const uploadSome = async (count: number): Promise<void> => {
        for (let index = 0; index < count; index++) {
          seed += 1;
          const image = await makeTestImage(160, 120, 'image/png', seed);
          const upload = await client.upload(workloadId, image, `${seed}.png`, 'image/png');
          expect(upload.status, `upload ${seed}`).to.equal(201);
        }
      };
      await uploadSome(4);

      flood = spawnNode(FLOOD_SCRIPT, [
        String(registerPort),
        String(FLOOD_CONNECTIONS),
        String(FLOOD_BYTES),
        String(FLOOD_SECONDS),
      ]);
      const floodStarted = Date.now();
      // a steady trickle of work for as long as the flood lasts
      while (Date.now() - floodStarted < FLOOD_SECONDS * 1000) {
        await uploadSome(2);
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      const floodEnd = await flood.exited;
      const floodReport = flood.output().trim();
      const done = await client.waitForCompletion(workloadId, 20_000);
      probing = false;
      for (const timer of timers) clearInterval(timer);

      const sorted = [...roundTrips].sort((a, b) => a - b);
      const died = logLines.filter((line) => /missed its heartbeats|leases expired/.test(line.msg ?? ''));
      const seen = new Set(samples.flat());
      console.log(
        `      flood: ${FLOOD_CONNECTIONS} connections x ${FLOOD_BYTES} bytes for ${FLOOD_SECONDS} s ` +
          `(${path.basename(FLOOD_SCRIPT)} exit ${floodEnd.code}: ${floodReport})\n` +
          `      probe heartbeat round trip: median ${percentile(sorted, 0.5)} ms, ` +
          `p95 ${percentile(sorted, 0.95)} ms, max ${sorted.at(-1)} ms over ${sorted.length} beats, ` +
          `${probeFailures} failed\n` +
          `      worker states seen: ${[...seen].join(', ')}; dead/expired log lines: ${died.length}; ` +
          `images ${done.total_images}, done ${done.done_jobs}, failed ${done.failed_jobs}`,
      );
      expect(floodEnd.code, floodReport).to.equal(0);
      expect(died.map((line) => `${line.msg} ${line.worker ?? ''}`)).to.deep.equal([]);
      expect([...seen]).to.deep.equal(['alive']);
      expect(probeFailures, 'probe heartbeats that failed').to.equal(0);
      expect(sorted.at(-1), 'the slowest probe heartbeat (ms)').to.be.below(LEASE_MS - HEARTBEAT_MS);
      expect(done.total_images).to.equal(seed);
      expect(done.done_jobs).to.equal(seed);
      expect(done.filtered_images).to.have.length(seed);
    },
  );
});
