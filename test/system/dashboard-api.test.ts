// The endpoints behind the dashboard, on a real server (api + controller + scheduler in this process)
// with a real worker process on loopback: the lists (workloads, workers, images), retrying failed
// jobs, the ZIP of the results, and the Server-Sent Events.
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { expect } from 'chai';
import request from 'supertest';
import type { Response } from 'supertest';
import { startServer, type Server } from '../../bin/server.js';
import { createLogger } from '../../common/log.js';
import type { ImageView as ImageItem, WorkerView as WorkerItem, WorkloadView } from '../../common/views.js';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { makeTestImage, poisonPng } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { liveWorker } from '../helpers/restart.js';
import { SseClient } from '../helpers/sse.js';
import { makeDirs, spawnWorker, testServerConfig, type TestDirs } from '../helpers/system.js';
import { readZip } from '../helpers/zip.js';

function expectError(res: Response, status: number, message?: RegExp): void {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers['content-type']).to.match(/^application\/json/);
  const body = res.body as { error: { code: number; message: string } };
  expect(body.error.code).to.equal(status);
  expect(body.error.message).to.be.a('string').and.not.equal('');
  if (message) expect(body.error.message).to.match(message);
}

/** Keeps a binary response body as a Buffer whatever its content type. */
function binary(res: Response, callback: (error: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
  res.on('error', (error: Error) => callback(error, Buffer.alloc(0)));
}

describe('dashboard API: lists, retry, archive and events', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let bob: TestClient;
  let suffix = 0;

  const name = (prefix: string): string => {
    suffix += 1;
    return `${prefix}-${Date.now().toString(36)}-${suffix}`;
  };
  const auth = (client: TestClient) => ({ authorization: `Bearer ${client.token}` });

  /** A short-lived URL token from `path` (POST /events/token, POST /workloads/{id}/archive/token). */
  async function urlToken(
    client: TestClient,
    path: string,
  ): Promise<{ token: string; expires_in: number; url: string }> {
    const res = await request(url).post(path).set(auth(client));
    expect(res.status, res.text).to.equal(200);
    return res.body as { token: string; expires_in: number; url: string };
  }

  async function images(client: TestClient, workloadId: string): Promise<ImageItem[]> {
    const res = await request(url).get(`/images?workload_id=${workloadId}`).set(auth(client));
    expect(res.status, res.text).to.equal(200);
    return (res.body as { images: ImageItem[] }).images;
  }

  async function uploadAll(client: TestClient, workloadId: string, count: number, seed: number): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index++) {
      const upload = await client.upload(
        workloadId,
        await makeTestImage(96 + 8 * index, 64, 'image/png', seed + index),
        `${index}.png`,
        'image/png',
      );
      expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
      ids.push(upload.body.image_id!);
    }
    return ids;
  }

  before(async () => {
    dirs = await makeDirs();
    const config = await testServerConfig(dirs);
    config.api.events = { workersMs: 200, heartbeatMs: 300, coalesceMs: 20, historySamples: 50 };
    // URL tokens live 2 s here (60 s by default), so that a test can outlive one
    config.controller.urlTokenTtlSeconds = 2;
    server = await startServer(config, createLogger('test-server', 'silent'));
    url = `http://127.0.0.1:${server.api.port}`;
    spawnWorker({
      controllerPort: config.controller.port,
      name: 'dash-worker',
      engine: 'sharp',
      slots: 2,
      tags: ['dash'],
    });
    await waitFor(
      'the worker to register',
      async () => liveWorker(server, 'dash-worker')?.state === 'alive',
      30_000,
      20,
    );
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    bob = await TestClient.login(url, 'bob', 'bob-pass');
  });

  after(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  describe('authentication', () => {
    const routes = ['/workloads', '/workers', '/images?workload_id=x', '/workloads/x/archive', '/events'];
    for (const path of routes) {
      it(`GET ${path} without a token is 401 JSON`, async () => {
        expectError(await request(url).get(path), 401, /missing token/);
      });
      it(`GET ${path} with a bad token is 401 JSON`, async () => {
        expectError(await request(url).get(path).set('authorization', 'Bearer not-a-token'), 401, /invalid/);
      });
    }
    it('POST /workloads/:id/retry without a token is 401 JSON', async () => {
      expectError(await request(url).post('/workloads/x/retry'), 401);
    });
    it('takes ?token= only where a browser cannot set headers (events, archive)', async () => {
      expectError(await request(url).get(`/workloads?token=${alice.token}`), 401, /missing token/);
      expectError(await request(url).get('/workloads/x/archive?token=forged'), 401, /invalid/);
      expectError(await request(url).get('/events?token=forged'), 401, /invalid/);
    });

    it("refuses a user's own token in the URL, saying how to get a short-lived one", async () => {
      expectError(
        await request(url).get(`/events?token=${alice.token}`),
        401,
        /not accepted in the URL.*POST \/events\/token/,
      );
      expectError(
        await request(url).get(`/workloads/x/archive?token=${alice.token}`),
        401,
        /not accepted in the URL.*POST \/workloads\/x\/archive\/token/,
      );
    });
  });

  describe('the dashboard files', () => {
    it(
      'serves the page at / and its scripts under /js/, ' + 'under a strict Content-Security-Policy, without a token',
      async () => {
        const page = await request(url).get('/');
        expect(page.status).to.equal(200);
        expect(page.headers['content-type']).to.match(/^text\/html/);
        expect(page.text).to.contain('<script type="module" src="js/main.js"></script>');
        expect(page.headers['content-security-policy'])
          .to.contain("script-src 'self'")
          .and.contain("default-src 'self'");
        expect(page.headers['x-content-type-options']).to.equal('nosniff');
        for (const file of ['/style.css', '/favicon.svg', '/js/main.js', '/js/api.js', '/js/views/workload.js']) {
          const res = await request(url).get(file);
          expect(res.status, file).to.equal(200);
        }
        expect((await request(url).get('/js/main.js')).headers['content-type']).to.match(
          /^(text|application)\/javascript/,
        );
      },
    );

    it('leaves unknown files and other methods to the JSON 404', async () => {
      expectError(await request(url).get('/js/nope.js'), 404);
      expectError(await request(url).post('/'), 404);
      expectError(await request(url).get('/../package.json'), 404);
    });
  });

  describe('GET /workloads', () => {
    it("lists the caller's workloads only, newest first, in the view of GET /workloads/:id", async () => {
      const first = await alice.createWorkload({ workload_name: name('first') });
      await new Promise((resolve) => setTimeout(resolve, 5));
      const second = await alice.createWorkload({ workload_name: name('second'), filter: 'blur', tags: ['nowhere'] });
      const bobs = await bob.createWorkload({ workload_name: name('bobs') });
      const res = await request(url).get('/workloads').set(auth(alice));
      expect(res.status, res.text).to.equal(200);
      const list = (res.body as { workloads: WorkloadBody[] }).workloads;
      const ids = list.map((workload) => workload.workload_id);
      expect(ids.indexOf(second.workload_id)).to.be.below(ids.indexOf(first.workload_id));
      expect(ids.indexOf(first.workload_id)).to.be.at.least(0);
      expect(ids).not.to.include(bobs.workload_id);
      expect(list.find((workload) => workload.workload_id === second.workload_id)).to.deep.equal(
        await alice.workload(second.workload_id),
      );
      const bobList = ((await request(url).get('/workloads').set(auth(bob))).body as { workloads: WorkloadBody[] })
        .workloads;
      expect(bobList.map((workload) => workload.workload_id)).to.deep.equal([bobs.workload_id]);
      expect((res.body as { next_cursor: string | null }).next_cursor, 'one page holds them all').to.equal(null);
    });
  });

  describe('GET /workers', () => {
    it('shows each worker with its state, load, slots and resource history, and no secrets', async () => {
      await waitFor(
        'two samples in the history',
        async () => {
          const worker = liveWorker(server, 'dash-worker');
          return worker && server.controller.history.recent(worker.record.id, 2, Date.now()).length >= 2;
        },
        10_000,
      );
      const res = await request(url).get('/workers').set(auth(bob));
      expect(res.status, res.text).to.equal(200);
      const workers = (res.body as { workers: WorkerItem[] }).workers;
      const worker = workers.find((item) => item.name === 'dash-worker');
      expect(worker, JSON.stringify(workers)).to.not.equal(undefined);
      expect(worker!.state).to.equal('alive');
      expect(worker!.tags).to.deep.equal(['dash']);
      expect(worker!.slots).to.equal(2);
      expect(worker!.prefetch, 'the default --prefetch auto: 1 until a job has ended, at most 16').to.be.within(1, 16);
      expect(worker!.running_jobs).to.be.at.most(worker!.slots + worker!.prefetch);
      expect(worker!.free_slots).to.equal(Math.max(0, 2 - worker!.running_jobs));
      expect(worker!.cpu_load).to.be.within(0, 100);
      expect(worker!.mem_used).to.be.within(0, 1);
      expect(worker!.mem_total).to.be.above(0);
      expect(worker!.gpu.present).to.be.a('boolean');
      expect(worker!.history.length).to.be.at.least(2);
      for (const sample of worker!.history) {
        expect(sample.t).to.be.a('number');
        expect(sample.cpu_load).to.be.within(0, 100);
        expect(sample.mem_used).to.be.within(0, 1);
      }
      expect(res.text).not.to.match(/token|rpc_address|tcp:\/\//);
    });
  });

  describe('GET /images?workload_id=', () => {
    it("needs the workload id (400) and hides other users' workloads (404)", async () => {
      expectError(await request(url).get('/images').set(auth(alice)), 400, /workload_id/);
      expectError(await request(url).get('/images?workload_id=').set(auth(alice)), 400, /workload_id/);
      expectError(await request(url).get('/images?workload_id=no-such-id').set(auth(alice)), 404);
      const bobs = await bob.createWorkload({ workload_name: name('private') });
      expectError(await request(url).get(`/images?workload_id=${bobs.workload_id}`).set(auth(alice)), 404);
      expectError(
        await request(url)
          .get(`/images?workload_id=${bobs.workload_id}&workload_id=${bobs.workload_id}`)
          .set(auth(bob)),
        400,
        /workload_id/,
      );
    });

    it('treats inherited property names as the unknown ids they are', async () => {
      for (const id of ['__proto__', 'constructor', 'toString']) {
        expectError(await request(url).get(`/images?workload_id=${id}`).set(auth(alice)), 404);
        expectError(await request(url).post(`/workloads/${id}/retry`).set(auth(alice)), 404);
        expectError(await request(url).get(`/workloads/${id}/archive`).set(auth(alice)), 404);
      }
    });

    it('lists queued originals with their job state and size', async () => {
      const workload = await alice.createWorkload({ workload_name: name('queued'), tags: ['nowhere'] });
      const ids = await uploadAll(alice, workload.workload_id, 2, 10);
      const list = await images(alice, workload.workload_id);
      expect(list.map((image) => image.image_id)).to.deep.equal(ids);
      expect(list[1]).to.include({
        type: 'original',
        source_image_id: null,
        mime: 'image/png',
        width: 104,
        height: 64,
        job_state: 'queued',
        error: null,
        filtered_image_id: null,
      });
      expect(list[1]!.bytes).to.be.above(0);
    });
  });

  describe('a workload that runs: images, archive', () => {
    let workload: WorkloadBody;
    let originals: string[];

    before(async () => {
      workload = await alice.createWorkload({ workload_name: name('run'), tags: ['dash'] });
      originals = await uploadAll(alice, workload.workload_id, 3, 20);
      workload = await alice.waitForCompletion(workload.workload_id, 60_000);
      expect(workload.done_jobs).to.equal(3);
    });

    it('lists each original followed by its filtered image', async () => {
      const list = await images(alice, workload.workload_id);
      expect(list).to.have.length(6);
      for (const [index, originalId] of originals.entries()) {
        const original = list[2 * index]!;
        const filtered = list[2 * index + 1]!;
        expect(original).to.include({
          image_id: originalId,
          type: 'original',
          format: 'png',
          job_state: 'done',
          error: null,
        });
        // what the gallery shows under the result: its format and size
        expect(filtered).to.include({
          image_id: original.filtered_image_id,
          type: 'filtered',
          source_image_id: originalId,
          format: 'png',
          mime: 'image/png',
          width: original.width,
          height: original.height,
        });
        expect(filtered.image_id).to.equal(workload.filtered_images[index]);
      }
    });

    for (const how of ['header', 'query'] as const) {
      it(`streams a ZIP of the filtered images (token in the ${how})`, async () => {
        const path = `/workloads/${workload.workload_id}/archive`;
        const res = await (how === 'header'
          ? request(url).get(path).set(auth(alice))
          : request(url).get((await urlToken(alice, `${path}/token`)).url)
        )
          .buffer(true)
          .parse(binary);
        expect(res.status).to.equal(200);
        expect(res.headers['content-type']).to.equal('application/zip');
        expect(res.headers['content-disposition']).to.equal(`attachment; filename="${workload.workload_name}.zip"`);
        const body = res.body as Buffer;
        expect(Number(res.headers['content-length'])).to.equal(body.length);
        const entries = readZip(body);
        expect(entries).to.have.length(3);
        for (const [index, imageId] of workload.filtered_images.entries()) {
          const download = await alice.download(imageId);
          expect(entries[index]!.name).to.equal(`${workload.workload_name}/${originals[index]}.filtered.png`);
          expect(entries[index]!.data.equals(download.data)).to.equal(true);
        }
      });
    }

    it('is 404 JSON, before anything is sent, when a filtered file is missing on disk', async () => {
      const other = await alice.createWorkload({ workload_name: name('gone'), tags: ['dash'] });
      await uploadAll(alice, other.workload_id, 2, 60);
      const done = await alice.waitForCompletion(other.workload_id);
      const image = server.controller.store.data.images[done.filtered_images[1]!]!;
      await rm(server.controller.images.localPath(image)!);
      expectError(await request(url).get(`/workloads/${other.workload_id}/archive`).set(auth(alice)), 404, /missing/);
    });

    it('cuts the connection when a file fails while the archive is sent, and the server carries on', async () => {
      const other = await alice.createWorkload({ workload_name: name('unreadable'), tags: ['dash'] });
      await uploadAll(alice, other.workload_id, 2, 70);
      const done = await alice.waitForCompletion(other.workload_id);
      // a directory where the second file was: its size reads fine, its content does not
      const file = server.controller.images.localPath(server.controller.store.data.images[done.filtered_images[1]!]!)!;
      await rm(file);
      await mkdir(file);
      const outcome = await new Promise<{ status: number; received: number; declared: number; complete: boolean }>(
        (resolve, reject) => {
          const req = httpGet(
            `${url}/workloads/${other.workload_id}/archive`,
            { headers: auth(alice), agent: false },
            (res) => {
              let received = 0;
              res.on('data', (chunk: Buffer) => (received += chunk.length));
              res.on('error', () => undefined);
              res.on('close', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  received,
                  declared: Number(res.headers['content-length']),
                  complete: res.complete,
                }),
              );
            },
          );
          req.on('error', reject);
        },
      );
      expect(outcome.status).to.equal(200);
      expect(outcome.complete).to.equal(false);
      expect(outcome.received).to.be.below(outcome.declared);
      expectError(await request(url).get('/workloads').set('authorization', 'Bearer nope'), 401);
    });

    it("is 404 for another user's workload and 409 while nothing is filtered", async () => {
      expectError(await request(url).get(`/workloads/${workload.workload_id}/archive`).set(auth(bob)), 404);
      const empty = await alice.createWorkload({ workload_name: name('empty') });
      expectError(
        await request(url).get(`/workloads/${empty.workload_id}/archive`).set(auth(alice)),
        409,
        /no filtered images/,
      );
    });
  });

  describe('POST /workloads/:id/retry', () => {
    it('requeues the failed jobs with fresh attempts; another user gets 404', async () => {
      const workload = await alice.createWorkload({ workload_name: name('retry'), tags: ['dash'] });
      const [good] = await uploadAll(alice, workload.workload_id, 1, 30);
      const poison = await alice.upload(workload.workload_id, await poisonPng(), 'bad.png', 'image/png');
      expect(poison.status).to.equal(201);
      const failed = await alice.waitForCompletion(workload.workload_id);
      expect(failed.failed_jobs).to.equal(1);
      const listed = await images(alice, workload.workload_id);
      const bad = listed.find((image) => image.image_id === poison.body.image_id)!;
      expect(bad.job_state).to.equal('failed');
      expect(bad.error).to.be.a('string').and.not.equal('');
      expect(listed.find((image) => image.image_id === good)!.job_state).to.equal('done');

      expectError(await request(url).post(`/workloads/${workload.workload_id}/retry`).set(auth(bob)), 404);
      expectError(await request(url).post('/workloads/no-such-id/retry').set(auth(alice)), 404);

      const jobId = server.controller.store.data.images[poison.body.image_id!]!.job_id!;
      const res = await request(url).post(`/workloads/${workload.workload_id}/retry`).set(auth(alice));
      expect(res.status, res.text).to.equal(200);
      const body = res.body as WorkloadBody & { retried_jobs: number };
      expect(body.retried_jobs).to.equal(1);
      expect(body.workload_id).to.equal(workload.workload_id);
      expect(body.failed_jobs).to.equal(0);
      expect(body.done_jobs).to.equal(1);
      expect(body.status).to.equal('running');

      // a poison input fails again, on its first new attempt
      const again = await alice.waitForCompletion(workload.workload_id);
      expect(again.failed_jobs).to.equal(1);
      expect(server.controller.store.data.jobs[jobId]!.attempts).to.equal(1);

      // nothing failed, nothing to retry
      const clean = await alice.createWorkload({ workload_name: name('clean') });
      const nothing = await request(url).post(`/workloads/${clean.workload_id}/retry`).set(auth(alice));
      expect(nothing.status).to.equal(200);
      expect((nothing.body as { retried_jobs: number }).retried_jobs).to.equal(0);
    });
  });

  describe('GET /events', () => {
    it(
      "streams the user's own workload changes, " + 'worker snapshots and heartbeats, and cleans up on disconnect',
      async () => {
        // the metrics listen to job events for the server's whole life; the streams' hub only while one is open
        const listeners = server.controller.events.listenerCount('job');
        const aliceStream = await SseClient.open(url, (await urlToken(alice, '/events/token')).url);
        const bobStream = await SseClient.open(url, '/events', auth(bob));
        try {
          expect(aliceStream.response.statusCode).to.equal(200);
          expect(aliceStream.response.headers['content-type']).to.match(/^text\/event-stream/);
          expect(bobStream.response.statusCode).to.equal(200);
          expect(server.controller.events.listenerCount('job')).to.equal(listeners + 1);
          expect((await aliceStream.next<{ user: string }>('hello')).user).to.equal('alice');
          const snapshot = await aliceStream.next<{ workers: WorkerItem[] }>('workers', (data) =>
            data.workers.some((worker) => worker.name === 'dash-worker'),
          );
          const worker = snapshot.workers.find((item) => item.name === 'dash-worker')!;
          expect(worker.history.length).to.be.within(1, 50);
          // snapshots keep coming (every 200 ms here), and so do heartbeats (every 300 ms)
          const count = aliceStream.events.filter((item) => item.event === 'workers').length;
          await aliceStream.next(
            'workers',
            () => aliceStream.events.filter((item) => item.event === 'workers').length > count + 1,
          );
          await waitFor('a heartbeat', async () => aliceStream.comments > 0, 5_000, 20);

          const workload = await alice.createWorkload({ workload_name: name('live'), tags: ['dash'] });
          // one image, seen on the stream, then another: each change reaches the stream by itself
          await uploadAll(alice, workload.workload_id, 1, 40);
          await aliceStream.next<WorkloadBody>(
            'workload',
            (view) => view.workload_id === workload.workload_id && view.total_images === 1,
            60_000,
          );
          await uploadAll(alice, workload.workload_id, 1, 41);
          const completed = await aliceStream.next<WorkloadBody>(
            'workload',
            (view) =>
              view.workload_id === workload.workload_id && view.total_images === 2 && view.status === 'completed',
            60_000,
          );
          expect(completed.done_jobs).to.equal(2);
          expect(completed).to.deep.equal(await alice.workload(workload.workload_id));
          const seen = aliceStream.events.filter(
            (item) => item.event === 'workload' && (item.data as WorkloadBody).workload_id === workload.workload_id,
          );
          const progress = seen.map((item) => (item.data as WorkloadBody).done_jobs);
          expect(progress, 'progress never goes back').to.deep.equal([...progress].sort((a, b) => a - b));

          // bob's stream is alive but heard nothing of alice's workload
          await bobStream.next('workers', () => true);
          expect(bobStream.events.filter((item) => item.event === 'workload')).to.deep.equal([]);
        } finally {
          aliceStream.close();
          bobStream.close();
        }
        await waitFor(
          'the streams to be cleaned up',
          async () => server.controller.events.listenerCount('job') === listeners,
          5_000,
          20,
        );
      },
    );

    it("tells the owner's streams of a workload made, cancelled and deleted, and no one else's", async () => {
      const aliceStream = await SseClient.open(url, '/events', auth(alice));
      const bobStream = await SseClient.open(url, '/events', auth(bob));
      try {
        await aliceStream.next('hello');
        await bobStream.next('hello');
        const made = await alice.createWorkload({ workload_name: name('lifecycle') });
        const id = made.workload_id;
        const created = await aliceStream.next<WorkloadBody>('workload', (view) => view.workload_id === id);
        expect(created.status).to.equal('scheduling');
        expect(created.cancelled_at).to.equal(null);

        expect((await alice.cancelWorkload(id)).status).to.equal(200);
        const cancelled = await aliceStream.next<WorkloadBody>(
          'workload',
          (view) => view.workload_id === id && view.status === 'cancelled',
        );
        expect(cancelled.cancelled_at).to.be.a('string');
        expect(cancelled).to.deep.equal(await alice.workload(id));

        expect((await alice.deleteWorkload(id)).status).to.equal(200);
        await aliceStream.next<{ workload_id: string }>('workload_deleted', (data) => data.workload_id === id);
        // nothing of it after its deletion, once any pending change would have been sent (20 ms here)
        await new Promise((resolve) => setTimeout(resolve, 300));
        const about = aliceStream.events.filter(
          (item) =>
            (item.data as { workload_id?: string }).workload_id === id &&
            (item.event === 'workload' || item.event === 'workload_deleted'),
        );
        expect(about.at(-1)?.event).to.equal('workload_deleted');
        expect(bobStream.events.filter((item) => item.event.startsWith('workload'))).to.deep.equal([]);
      } finally {
        aliceStream.close();
        bobStream.close();
      }
    });

    it("sends a chain workload's view with its chain, and why its images wait as soon as one does", async () => {
      const stream = await SseClient.open(url, '/events', auth(alice));
      try {
        await stream.next('hello');
        const response = await request(url)
          .post('/workloads')
          .set(auth(alice))
          .send({ workload_name: name('chain'), tags: ['nowhere'], operations: [{ op: 'flop' }, { op: 'thumbnail' }] });
        expect(response.status, response.text).to.equal(201);
        const id = (response.body as WorkloadBody).workload_id;
        const made = await stream.next<WorkloadView>('workload', (view) => view.workload_id === id);
        expect(made).to.deep.include({ filter: null, operations: [{ op: 'flop' }, { op: 'thumbnail', size: 256 }] });
        expect(made.waiting_for, 'nothing waits yet').to.equal(undefined);
        await uploadAll(alice, id, 1, 40);
        const waiting = await stream.next<WorkloadView>(
          'workload',
          (view) => view.workload_id === id && view.queued_jobs === 1,
        );
        expect(waiting.waiting_for).to.equal('no live worker can carry the tag "nowhere"');
        expect(waiting).to.deep.equal(await alice.workload(id));
      } finally {
        stream.close();
      }
    });

    it('ends a stream whose token is revoked, with a logout event', async () => {
      const client = await TestClient.login(url, 'bob', 'bob-pass');
      const stream = await SseClient.open(url, '/events', auth(client));
      try {
        await stream.next('hello');
        expect((await request(url).delete('/logout').set(auth(client))).status).to.equal(200);
        await stream.next('logout');
        await stream.closedByServer();
      } finally {
        stream.close();
      }
      expectError(await request(url).get('/events').set(auth(client)), 401);
    });

    it(
      'keeps a stream opened with a URL token going past that token, as long as the session it came from; ' +
        'ends it with a logout event once the session is revoked',
      async () => {
        const client = await TestClient.login(url, 'bob', 'bob-pass');
        const { url: streamUrl } = await urlToken(client, '/events/token');
        const stream = await SseClient.open(url, streamUrl);
        try {
          await stream.next('hello');
          await new Promise((resolve) => setTimeout(resolve, 3_000));
          expectError(await request(url).get(streamUrl), 401, /invalid, expired or revoked/);
          const count = stream.events.filter((item) => item.event === 'workers').length;
          await stream.next(
            'workers',
            () => stream.events.filter((item) => item.event === 'workers').length > count,
            5_000,
          );
          expect(stream.ended, 'the stream outlived its URL token').to.equal(false);
          expect((await request(url).delete('/logout').set(auth(client))).status).to.equal(200);
          await stream.next('logout');
          await stream.closedByServer();
        } finally {
          stream.close();
        }
      },
    );
  });

  describe('short-lived URL tokens', () => {
    it('POST /events/token: a token valid for a short time, for GET /events only, tied to the session', async () => {
      expectError(await request(url).post('/events/token'), 401, /missing token/);
      const client = await TestClient.login(url, 'alice', 'alice-pw');
      const issued = await urlToken(client, '/events/token');
      expect(issued.expires_in).to.be.within(1, 2);
      expect(issued.url).to.equal(`/events?token=${encodeURIComponent(issued.token)}`);
      const stream = await SseClient.open(url, issued.url);
      try {
        expect(stream.response.statusCode).to.equal(200);
        expect((await stream.next<{ user: string }>('hello')).user).to.equal('alice');
      } finally {
        stream.close();
      }
      // nowhere else, in a header or in a URL
      const bearer = { authorization: `Bearer ${issued.token}` };
      expectError(await request(url).get('/workloads').set(bearer), 401, /only in the URL of GET \/events/);
      expectError(await request(url).get('/events').set(bearer), 401, /only in the URL/);
      expectError(await request(url).get(`/images/${randomUUID()}`).set(bearer), 401, /only in the URL/);
      expectError(await request(url).get(`/workloads/x/archive?token=${issued.token}`), 401, /GET \/events/);
      // a logout ends the tokens issued under the session
      expect((await request(url).delete('/logout').set(auth(client))).status).to.equal(200);
      expectError(await request(url).get(issued.url), 401, /invalid, expired or revoked/);
      expectError(await request(url).post('/events/token').set(auth(client)), 401);
    });

    it('POST /workloads/{id}/archive/token: for that workload of that user only', async () => {
      const mine = await alice.createWorkload({ workload_name: name('tok') });
      const other = await alice.createWorkload({ workload_name: name('tok') });
      expectError(await request(url).post(`/workloads/${mine.workload_id}/archive/token`).set(auth(bob)), 404);
      expectError(await request(url).post('/workloads/no-such-id/archive/token').set(auth(alice)), 404);
      const issued = await urlToken(alice, `/workloads/${mine.workload_id}/archive/token`);
      expect(issued.url).to.equal(`/workloads/${mine.workload_id}/archive?token=${encodeURIComponent(issued.token)}`);
      // the token opens this archive (409: nothing filtered yet), and no other
      expectError(await request(url).get(issued.url), 409, /no filtered images/);
      expectError(
        await request(url).get(`/workloads/${other.workload_id}/archive?token=${issued.token}`),
        401,
        /another workload/,
      );
      expectError(await request(url).get(`/events?token=${issued.token}`), 401, /archive/);
      expectError(
        await request(url).get('/workloads').set('authorization', `Bearer ${issued.token}`),
        401,
        /only in the URL/,
      );
    });

    it('refuses a worker token in the URL', async () => {
      const worker = server.controller.tokens.issue('some-worker', 'worker').token;
      expectError(await request(url).get(`/events?token=${worker}`), 401, /not accepted in the URL/);
      expectError(await request(url).post('/events/token').set('authorization', `Bearer ${worker}`), 403);
    });
  });
});
