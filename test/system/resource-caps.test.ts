// Issue 12, point 7: one registered user must not be able to exhaust the server. Caps on open event
// streams (per user and in all), slow streams dropped past a small buffer, per-user quotas on originals.
import http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import { connectRpc } from '../../common/bus/index.js';
import { createLogger } from '../../common/log.js';
import { registerResultSchema } from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import { startServer, type Server, type ServerConfig } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { DIST_BIN, killAll, spawnNode, waitFor } from '../helpers/processes.js';
import { SseClient } from '../helpers/sse.js';
import { makeDirs, spawnWorker, testServerConfig, TEST_SECRET, type TestDirs } from '../helpers/system.js';

interface Opened {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The answer's body when it is not a stream (a refusal). */
  text: Promise<string>;
  req: http.ClientRequest;
  res: http.IncomingMessage;
}

/** GET /events without reading the stream: the response is paused as soon as it arrives. */
function openUnread(url: string, token: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/events`, { headers: { authorization: `Bearer ${token}` }, agent: false });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let text: Promise<string> = Promise.resolve('');
      if (status === 200) res.pause();
      else {
        text = new Promise((done) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => done(body));
        });
      }
      resolve({ status, headers: res.headers, text, req, res });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The whole image as the body, with a declared length, so the quota can refuse it before reading it. */
function rawUpload(url: string, token: string, workloadId: string, data: Buffer, send = true): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/images?workload_id=${workloadId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png', 'content-length': data.length },
      agent: false,
    });
    req.on('response', (res) => {
      const text = new Promise<string>((done) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done(body));
      });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text, req, res });
    });
    req.on('error', reject);
    if (send) req.end(data);
    else req.flushHeaders();
  });
}

/** The server in this process, and alice and bob logged in to it. */
async function startAndLogin(
  config: ServerConfig,
): Promise<{ server: Server; url: string; alice: TestClient; bob: TestClient }> {
  const server = await startServer(config, createLogger('test-server', 'silent'));
  const url = `http://127.0.0.1:${server.api.port}`;
  return {
    server,
    url,
    alice: await TestClient.login(url, 'alice', 'alice-pw'),
    bob: await TestClient.login(url, 'bob', 'bob-pass'),
  };
}

describe('resource caps: event streams and per-user quotas', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let config: ServerConfig;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let bob: TestClient;

  async function start(): Promise<void> {
    ({ server, url, alice, bob } = await startAndLogin(config));
  }

  before(async () => {
    dirs = await makeDirs();
    config = await testServerConfig(dirs);
    config.api.events = { workersMs: 50, heartbeatMs: 300, coalesceMs: 20, historySamples: 5 };
    // set without naming the types, so that the same test compiles on code without these caps
    Object.assign(config.api, { streams: { maxStreams: 3, maxStreamsPerUser: 2 } });
    Object.assign(config.controller, { userQuotas: { images: 3, bytes: null } });
    await start();
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  describe('GET /events', () => {
    it('refuses a stream past the per-user cap and past the total cap: 429, Retry-After, the cap named', async () => {
      const open: Opened[] = [];
      try {
        for (let index = 0; index < 2; index++) open.push(await openUnread(url, alice.token));
        expect(open.map((item) => item.status)).to.deep.equal([200, 200]);
        const third = await openUnread(url, alice.token);
        expect(third.status).to.equal(429);
        expect(Number(third.headers['retry-after'])).to.be.greaterThan(0);
        expect(await third.text).to.match(/2 event streams open.*--max-streams-per-user 2/);

        // bob has none open, but the server has room for one more only
        open.push(await openUnread(url, bob.token));
        expect(open[2]!.status).to.equal(200);
        const fourth = await openUnread(url, bob.token);
        expect(fourth.status).to.equal(429);
        expect(Number(fourth.headers['retry-after'])).to.be.greaterThan(0);
        expect(await fourth.text).to.match(/3 event streams open.*--max-streams 3/);

        // a closed stream gives its place back
        open.shift()!.req.destroy();
        await waitFor(
          'a place for alice',
          async () => {
            const again = await openUnread(url, alice.token);
            if (again.status === 200) open.push(again);
            return again.status === 200;
          },
          5_000,
          50,
        );
      } finally {
        for (const item of open) item.req.destroy();
      }
    });

    it('drops a stream that does not read once a little waits in its buffer; its place is freed', async () => {
      // a stream that has many big worker snapshots to send: fake workers with 64 long filter names each
      const rpc = connectRpc(`tcp://127.0.0.1:${rpcPortOf(config.controller)}`, 3000);
      try {
        for (let index = 0; index < 10; index++) {
          await rpc.call(
            'register',
            {
              secret: TEST_SECRET,
              name: `fat-${index}`,
              instance_id: `fat-instance-${index}`,
              tags: [],
              rpc_address: 'tcp://127.0.0.1:1',
              slots: 1,
              engine: 'jimp',
              filters: Array.from({ length: 64 }, (_, filter) => `filter-${filter}-${'x'.repeat(180)}`),
              resources: { cpu_load: 0, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } },
              running: [],
            },
            registerResultSchema,
          );
        }
      } finally {
        rpc.close();
      }
      const reader = await SseClient.open(url, '/events', { authorization: `Bearer ${alice.token}` });
      const stalled = await openUnread(url, alice.token);
      try {
        expect(stalled.status).to.equal(200);
        const full = await openUnread(url, alice.token);
        full.req.destroy();
        expect(full.status, 'alice has 2 streams open').to.equal(429);
        // alice's 2 places are taken until the stalled one is dropped (about 130 KB of snapshots every 50 ms)
        const started = Date.now();
        await waitFor(
          'the stalled stream to be dropped',
          async () => {
            const again = await openUnread(url, alice.token);
            again.req.destroy();
            return again.status === 200;
          },
          10_000,
          100,
        );
        const droppedAfterMs = Date.now() - started;
        // the stream that reads keeps going
        const count = reader.events.filter((item) => item.event === 'workers').length;
        await reader.next('workers', () => reader.events.filter((item) => item.event === 'workers').length > count);
        expect(reader.ended).to.equal(false);
        console.log(`      (the stalled stream was dropped ${droppedAfterMs} ms after it opened)`);
      } finally {
        reader.close();
        stalled.req.destroy();
      }
    });
  });

  describe('per-user quotas', () => {
    /** A small PNG (32x24, seeded) uploaded as multipart. */
    async function uploadSmall(client: TestClient, workloadId: string, seed: number) {
      return client.upload(workloadId, await makeTestImage(32, 24, 'image/png', seed), 'a.png', 'image/png');
    }

    it('refuses the original past --user-quota-images with 403 and says so; other users are not affected', async () => {
      const workload = await alice.createWorkload({});
      for (let index = 0; index < 3; index++) {
        const upload = await uploadSmall(alice, workload.workload_id, index + 1);
        expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
      }
      const refused = await uploadSmall(alice, workload.workload_id, 9);
      expect(refused.status).to.equal(403);
      expect(refused.body.error?.message).to.match(
        /quota of 3 images reached: you keep 3 originals.*--user-quota-images/,
      );
      // refused on its headers alone, before a byte of the body is sent
      const early = await rawUpload(url, alice.token, workload.workload_id, Buffer.alloc(4 * 1024 * 1024), false);
      expect(early.status).to.equal(403);
      early.req.destroy();
      expect((await alice.workload(workload.workload_id)).total_images).to.equal(3);

      const bobs = await bob.createWorkload({});
      const upload = await uploadSmall(bob, bobs.workload_id, 1);
      expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
    });

    it('counts what a user keeps from the records at start', async () => {
      await server.close();
      await start();
      const workload = await alice.createWorkload({});
      const refused = await uploadSmall(alice, workload.workload_id, 10);
      expect(refused.status).to.equal(403);
      expect(refused.body.error?.message).to.match(/quota of 3 images/);
    });

    it('refuses the bytes past --user-quota-bytes with 403: declared, before the body, or counted', async () => {
      const first = await makeTestImage(64, 48, 'image/png', 21);
      const second = await makeTestImage(64, 48, 'image/png', 22);
      await server.close();
      Object.assign(config.controller, { userQuotas: { images: null, bytes: first.length + 100 } });
      await start();
      // bob kept one small original in the first test
      const workload = await bob.createWorkload({});
      const kept = await rawUpload(url, bob.token, workload.workload_id, first);
      expect(kept.status, await kept.text).to.equal(403);
      expect(await kept.text).to.match(/quota of .* reached: your originals take .*--user-quota-bytes/);

      Object.assign(config.controller, { userQuotas: { images: null, bytes: 2 * first.length + 100 } });
      await server.close();
      await start();
      const fits = await rawUpload(url, bob.token, workload.workload_id, first);
      expect(fits.status, await fits.text).to.equal(201);
      // multipart: the file's size is known only once it is read, and counted then
      const over = await bob.upload(workload.workload_id, second, 'b.png', 'image/png');
      expect(over.status).to.equal(403);
      expect(over.body.error?.message).to.match(/--user-quota-bytes/);
      // declared: refused before the body is sent
      const early = await rawUpload(url, bob.token, workload.workload_id, second, false);
      expect(early.status).to.equal(403);
      early.req.destroy();
    });
  });
});

describe('resource caps: the workers', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let config: ServerConfig;
  let server: Server;
  let alice: TestClient;

  async function start(): Promise<void> {
    ({ server, alice } = await startAndLogin(config));
  }

  before(async () => {
    dirs = await makeDirs();
    config = await testServerConfig(dirs);
    await start();
  });

  afterEach(async () => {
    await killAll();
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  for (const engine of ['sharp', 'jimp'] as const) {
    it(`${engine} decodes nothing over the API's --max-pixels, told at registration: fails for good`, async () => {
      // accepted under the limit of the day, then the limit is lowered
      const workload = await alice.createWorkload({ tags: [`px-${engine}`] });
      const upload = await alice.upload(
        workload.workload_id,
        await makeTestImage(200, 150, 'image/png', 3),
        'big.png',
        'image/png',
      );
      expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
      await server.close();
      config.api.maxPixels = 20_000;
      await start();
      spawnWorker({ controllerPort: config.controller.port, name: `px-${engine}`, engine, tags: [`px-${engine}`] });
      const done = await alice.waitForCompletion(workload.workload_id, 30_000);
      expect(done.failed_jobs).to.equal(1);
      // the engine's refusal, at the first attempt: not the API's refusal of the result, five times over
      expect(done.failures[0]?.error).to.match(
        engine === 'sharp' ? /could not decode image: .*pixel limit/ : /over the limit of 20000 \(--max-pixels\)/,
      );
      const job = Object.values(server.controller.store.data.jobs).find(
        (item) => item.workload_id === workload.workload_id,
      );
      expect(job?.attempts).to.equal(1);
      await server.close();
      config.api.maxPixels = 50_000_000;
      await start();
    });
  }

  it('runs no more jobs at once than fit its --max-memory, whatever its slots', async () => {
    // 200x150: ~17 MB estimated each; a budget of 30 MB holds one at a time, though the worker has 4 slots
    const worker = spawnNode(
      path.join(DIST_BIN, 'dpip-worker.js'),
      [
        '--controller',
        `127.0.0.1:${config.controller.port}`,
        '--worker-name',
        'lean',
        '--tags',
        'lean',
        '--slots',
        '4',
        '--max-memory',
        '30MB',
        '--log-level',
        'warn',
      ],
      { DPIP_SECRET: TEST_SECRET },
    );
    expect(worker).to.not.equal(undefined);
    const workload = await alice.createWorkload({ tags: ['lean'] });
    let most = 0;
    const count = (): void => {
      const running = Object.values(server.controller.store.data.jobs).filter(
        (job) => job.workload_id === workload.workload_id && job.state === 'running',
      ).length;
      most = Math.max(most, running);
    };
    server.controller.events.on('job', count);
    try {
      for (let index = 0; index < 8; index++) {
        const upload = await alice.upload(
          workload.workload_id,
          await makeTestImage(200, 150, 'image/png', 30 + index),
          `${index}.png`,
          'image/png',
        );
        expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
      }
      const done = await alice.waitForCompletion(workload.workload_id, 40_000);
      expect(done.done_jobs).to.equal(8);
    } finally {
      server.controller.events.off('job', count);
    }
    // (an offered job that is declined goes back to the queue at no cost; a job whose result is uploading
    // holds no memory, and the next may start beside it: 2)
    console.log(`      (at most ${most} running at once)`);
    expect(most, 'jobs running at once').to.be.at.most(2);
  });
});
