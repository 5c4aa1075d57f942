// Cancelling and deleting workloads and images, paging the list, and what a late worker meets: a real
// server with real files. The worker is played by the test with a worker token where the moment matters
// (a result arriving after its job was cancelled or deleted); the runs with real worker processes are
// in lifecycle-workers.test.ts.
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import type { Server } from '../../bin/server.js';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/processes.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const WORKER = 'stand-in-worker';

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('workload lifecycle: cancel, delete, pages', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let bob: TestClient;
  let png: Buffer;
  let result: Buffer;

  before(async () => {
    dirs = await makeDirs();
    ({ server, url } = await startTestServer(dirs));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    bob = await TestClient.login(url, 'bob', 'bob-pass');
    png = await makeTestImage(40, 30, 'image/png', 3);
    result = await makeTestImage(40, 30, 'image/png', 4);
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  async function uploadOriginals(workload: WorkloadBody, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index++) {
      const upload = await alice.upload(workload.workload_id, png, `${index}.png`, 'image/png');
      expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
      ids.push(String(upload.body.image_id));
    }
    return ids;
  }

  /** The stand-in worker takes the original's job: assigned and running, with its lease. */
  function hold(imageId: string): { jobId: string; leaseId: string } {
    const { controller } = server;
    const jobId = controller.store.data.images[imageId]?.job_id;
    if (!jobId) throw new Error('the original has no job');
    expect(controller.jobs.assign(jobId, WORKER).ok, 'assigned').to.equal(true);
    const leaseId = controller.store.data.jobs[jobId]?.lease?.lease_id;
    if (!leaseId) throw new Error('no lease');
    expect(controller.jobs.start(jobId, WORKER, leaseId).ok, 'started').to.equal(true);
    return { jobId, leaseId };
  }

  /** The stand-in worker's result upload, as a worker sends it. */
  function uploadResult(jobId: string, leaseId: string): request.Test {
    const token = server.controller.tokens.issue(WORKER, 'worker').token;
    return request(url)
      .post(`/images?type=filtered&job_id=${jobId}&lease_id=${leaseId}`)
      .set('authorization', `Bearer ${token}`)
      .set('content-type', 'image/png')
      .send(result);
  }

  /** Runs the original's job to done through the stand-in worker; returns the filtered image's id. */
  async function filter(imageId: string): Promise<string> {
    const { jobId, leaseId } = hold(imageId);
    const response = await uploadResult(jobId, leaseId);
    expect(response.status, JSON.stringify(response.body)).to.equal(201);
    return String(response.body.image_id);
  }

  const folderOf = (workload: WorkloadBody): string => path.join(dirs.imagesDir, workload.workload_name);

  it('a new workload has its folder in the images space at once, before any upload', async () => {
    const workload = await alice.createWorkload();
    expect((await stat(folderOf(workload))).isDirectory()).to.equal(true);
    expect(await readdir(folderOf(workload))).to.deep.equal([]);
  });

  it('cancel: queued and running jobs end cancelled, results stay, no more uploads; 409 once finished', async () => {
    const workload = await alice.createWorkload({ workload_name: 'to-cancel' });
    const [first, second, third] = await uploadOriginals(workload, 3);
    const filtered = await filter(first!);
    const running = hold(second!);

    expect((await bob.cancelWorkload(workload.workload_id)).status, "another user's").to.equal(404);
    const cancelled = await alice.cancelWorkload(workload.workload_id);
    expect(cancelled.status, JSON.stringify(cancelled.body)).to.equal(200);
    expect(cancelled.body).to.include({ status: 'cancelled', done_jobs: 1, cancelled_jobs: 2, running_jobs: 0 });
    expect(cancelled.body.filtered_images).to.deep.equal([filtered]);
    expect(cancelled.body.cancelled_at).to.be.a('string');

    // the result already filtered stays, and downloads
    expect((await alice.download(filtered)).status).to.equal(200);
    const view = await alice.workload(workload.workload_id);
    expect(view.status).to.equal('cancelled');

    // the running job's late result: 410, nothing kept, and its job is not counted as failed
    const filesBefore = await readdir(folderOf(workload));
    const late = await uploadResult(running.jobId, running.leaseId);
    expect(late.status, JSON.stringify(late.body)).to.equal(410);
    expect(await readdir(folderOf(workload))).to.deep.equal(filesBefore);
    expect(server.controller.store.data.jobs[running.jobId]).to.include({ state: 'cancelled', lease: null });
    expect(server.controller.store.data.jobs[running.jobId]?.error).to.equal(null);
    // its download of the original is refused as gone too
    const token = server.controller.tokens.issue(WORKER, 'worker').token;
    const download = await request(url).get(`/images/${second}`).set('authorization', `Bearer ${token}`);
    expect(download.status).to.equal(410);

    const upload = await alice.upload(workload.workload_id, png, 'late.png', 'image/png');
    expect(upload.status, 'an upload into a cancelled workload').to.equal(409);
    expect(upload.body.error?.message).to.match(/cancelled/);
    expect((await alice.cancelWorkload(workload.workload_id)).status, 'cancelled twice').to.equal(409);
    expect((await alice.call('POST', `/workloads/${workload.workload_id}/retry`)).status).to.equal(409);
    expect(server.controller.store.data.images[third!]).to.not.equal(undefined);

    // a workload that completed cannot be cancelled
    const done = await alice.createWorkload();
    const [only] = await uploadOriginals(done, 1);
    await filter(only!);
    const refused = await alice.cancelWorkload(done.workload_id);
    expect(refused.status).to.equal(409);
    expect(JSON.stringify(refused.body)).to.match(/already completed/);
  });

  it('delete: every image, job and file of the workload goes, then it and its images are 404', async () => {
    const workload = await alice.createWorkload({ workload_name: 'to-delete' });
    const ids = await uploadOriginals(workload, 4);
    const filtered = await filter(ids[0]!);
    const running = hold(ids[1]!);
    const { controller } = server;
    const jobIds = ids.map((id) => controller.store.data.images[id]?.job_id);
    const totalsBefore = structuredClone(controller.images.totals());

    expect((await bob.deleteWorkload(workload.workload_id)).status, "another user's").to.equal(404);
    const deleted = await alice.deleteWorkload(workload.workload_id);
    expect(deleted.status, JSON.stringify(deleted.body)).to.equal(200);
    expect(deleted.body).to.include({
      workload_id: workload.workload_id,
      deleted: true,
      removed_images: 5,
      removed_bytes: 4 * png.length + result.length,
      cancelled_jobs: 3,
    });

    expect((await alice.call('GET', `/workloads/${workload.workload_id}`)).status).to.equal(404);
    for (const id of [...ids, filtered]) expect((await alice.download(id)).status, id).to.equal(404);
    expect(await exists(folderOf(workload)), 'its folder').to.equal(false);
    for (const jobId of jobIds) expect(controller.store.data.jobs[jobId!], 'its jobs').to.equal(undefined);
    expect(controller.images.totals().original.images).to.equal(totalsBefore.original.images - 4);
    expect(controller.images.totals().filtered.bytes).to.equal(totalsBefore.filtered.bytes - result.length);

    // the worker that still ran one of its jobs: 410, and nothing lands anywhere
    const late = await uploadResult(running.jobId, running.leaseId);
    expect(late.status, JSON.stringify(late.body)).to.equal(410);
    expect(await exists(folderOf(workload)), 'no folder made again').to.equal(false);
    expect((await alice.deleteWorkload(workload.workload_id)).status, 'deleted twice').to.equal(404);

    // its name is free again
    const again = await alice.createWorkload({ workload_name: 'to-delete' });
    expect(again.workload_id).to.not.equal(workload.workload_id);
    expect(await alice.upload(again.workload_id, png, 'a.png', 'image/png')).to.have.property('status', 201);
  });

  it('cancel, then delete', async () => {
    const workload = await alice.createWorkload();
    const ids = await uploadOriginals(workload, 2);
    await filter(ids[0]!);
    expect((await alice.cancelWorkload(workload.workload_id)).status).to.equal(200);
    const deleted = await alice.deleteWorkload(workload.workload_id);
    expect(deleted.status).to.equal(200);
    expect(deleted.body).to.include({ removed_images: 3, cancelled_jobs: 0 });
    expect(await exists(folderOf(workload))).to.equal(false);
  });

  it('delete an original: its job and its result go with it; delete a result: the original stays done', async () => {
    const workload = await alice.createWorkload();
    const [kept, dropped, queued] = await uploadOriginals(workload, 3);
    const keptResult = await filter(kept!);
    const droppedResult = await filter(dropped!);
    const { controller } = server;
    const droppedJob = controller.store.data.images[dropped!]?.job_id;
    const queuedJob = controller.store.data.images[queued!]?.job_id;
    const files = (id: string): string => path.join(dirs.imagesDir, controller.store.data.images[id]!.file);
    const droppedFiles = [files(dropped!), files(droppedResult)];

    expect((await bob.deleteImage(dropped!)).status, "another user's").to.equal(404);
    const original = await alice.deleteImage(dropped!);
    expect(original.status, JSON.stringify(original.body)).to.equal(200);
    expect(original.body).to.include({
      type: 'original',
      removed_images: 2,
      removed_bytes: png.length + result.length,
    });
    expect((await alice.download(dropped!)).status).to.equal(404);
    expect((await alice.download(droppedResult)).status).to.equal(404);
    expect(controller.store.data.jobs[droppedJob!]).to.equal(undefined);
    for (const file of droppedFiles) expect(await exists(file), file).to.equal(false);

    // a queued original: its job is cancelled, then removed
    const queuedDeleted = await alice.deleteImage(queued!);
    expect(queuedDeleted.body).to.include({ removed_images: 1, cancelled_jobs: 1 });
    expect(controller.store.data.jobs[queuedJob!]).to.equal(undefined);

    const resultFile = files(keptResult);
    const alone = await alice.deleteImage(keptResult);
    expect(alone.status).to.equal(200);
    expect(alone.body).to.include({ type: 'filtered', removed_images: 1 });
    expect((await alice.download(keptResult)).status).to.equal(404);
    expect(await exists(resultFile)).to.equal(false);
    expect((await alice.download(kept!)).status, 'the original stays').to.equal(200);
    const view = await alice.workload(workload.workload_id);
    expect(view).to.include({ status: 'completed', total_images: 1, done_jobs: 1 });
    expect(view.filtered_images).to.deep.equal([]);
    const list = await alice.call('GET', `/images?workload_id=${workload.workload_id}`);
    const images = list.body.images as { image_id: string; job_state: string; filtered_image_id: string | null }[];
    expect(
      images.map(({ image_id, job_state, filtered_image_id }) => ({ image_id, job_state, filtered_image_id })),
    ).to.deep.equal([{ image_id: kept, job_state: 'done', filtered_image_id: null }]);
    expect((await alice.deleteImage(kept!)).status).to.equal(200);
    expect((await alice.deleteImage(kept!)).status, 'deleted twice').to.equal(404);
  });

  it('GET /workloads pages newest first with an opaque cursor; bad paging is a clear 400', async () => {
    const carol = await TestClient.login(url, 'bob', 'bob-pass');
    const made: string[] = [];
    for (let index = 0; index < 7; index++) made.push((await carol.createWorkload()).workload_id);
    const newestFirst = [...made].reverse();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const route: string = `/workloads?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await carol.call('GET', route);
      expect(page.status).to.equal(200);
      const workloads = page.body.workloads as WorkloadBody[];
      expect(workloads.length).to.be.at.most(3);
      seen.push(...workloads.map((workload) => workload.workload_id));
      cursor = page.body.next_cursor as string | null;
      pages += 1;
      // a workload deleted between pages shifts nothing
      if (pages === 1) {
        expect((await carol.deleteWorkload(newestFirst[3]!)).status).to.equal(200);
      }
    } while (cursor);
    expect(pages).to.equal(2);
    expect(seen).to.deep.equal(newestFirst.filter((_id, index) => index !== 3));
    const whole = await carol.call('GET', '/workloads');
    expect((whole.body.workloads as WorkloadBody[]).length).to.equal(6);
    expect(whole.body.next_cursor).to.equal(null);

    for (const bad of ['limit=0', 'limit=501', 'limit=ten', 'cursor=not-a-cursor', 'limit=-1']) {
      const answer = await carol.call('GET', `/workloads?${bad}`);
      expect(answer.status, bad).to.equal(400);
      expect((answer.body.error as { message: string }).message, bad).to.match(/limit|cursor/);
    }
  });

  it('deletions are counted in /metrics, and the kept images are gauges', async () => {
    const metrics = parsePrometheus((await request(url).get('/metrics')).text);
    const value = (name: string, labels: Record<string, string>): number | undefined => metrics.value(name, labels);
    expect(value('dpip_deleted_workloads_total', { reason: 'user' })).to.be.at.least(3);
    expect(value('dpip_deleted_images_total', { reason: 'user' })).to.be.at.least(12);
    expect(value('dpip_images', { type: 'original' })).to.equal(server.controller.images.totals().original.images);
  });

  it('deletions are durable: a restarted server has none of it back; each workload has its folder', async () => {
    const workload = await alice.createWorkload();
    const ids = await uploadOriginals(workload, 2);
    expect((await alice.deleteWorkload(workload.workload_id)).status).to.equal(200);
    // a folder left by a deletion cut short, and a workload whose folder is missing (made before folders
    // were made at creation): the next start removes the one and makes the other
    const kept = await alice.createWorkload();
    await rm(folderOf(kept), { recursive: true });
    const stray = path.join(dirs.imagesDir, 'left-by-a-crash');
    await mkdir(stray);
    await writeFile(path.join(stray, 'x.png'), png);
    await server.close();
    ({ server, url } = await startTestServer(dirs));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    bob = await TestClient.login(url, 'bob', 'bob-pass');
    expect((await alice.call('GET', `/workloads/${workload.workload_id}`)).status).to.equal(404);
    for (const id of ids) expect(server.controller.store.data.images[id]).to.equal(undefined);
    expect(await exists(folderOf(workload))).to.equal(false);
    expect(await exists(stray), 'a folder of no workload').to.equal(false);
    expect(await exists(folderOf(kept)), "a workload's missing folder").to.equal(true);
  });
});

describe('retention', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;

  before(async () => {
    dirs = await makeDirs();
    ({ server, url } = await startTestServer(dirs, { retentionMs: 1500 }));
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  it('deletes finished and cancelled workloads idle past the period, in the background; not unfinished', async () => {
    const alice = await TestClient.login(url, 'alice', 'alice-pw');
    const png = await makeTestImage(20, 20, 'image/png', 5);
    const idle = await alice.createWorkload();
    const cancelled = await alice.createWorkload();
    const busy = await alice.createWorkload();
    expect((await alice.upload(cancelled.workload_id, png, 'a.png', 'image/png')).status).to.equal(201);
    expect((await alice.cancelWorkload(cancelled.workload_id)).status).to.equal(200);
    expect((await alice.upload(busy.workload_id, png, 'b.png', 'image/png')).status).to.equal(201);

    const view = await alice.workload(cancelled.workload_id);
    expect(Date.parse(view.expires_at ?? '')).to.be.within(Date.now(), Date.now() + 1600);
    expect((await alice.workload(busy.workload_id)).expires_at, 'a queued job: no expiry').to.equal(null);

    await waitFor(
      'the idle and cancelled workloads to be deleted',
      async () =>
        (await alice.call('GET', `/workloads/${idle.workload_id}`)).status === 404 &&
        (await alice.call('GET', `/workloads/${cancelled.workload_id}`)).status === 404,
      15_000,
      200,
    );
    // the record goes first, then (in the background, as the whole deletion) the folder
    const folder = path.join(dirs.imagesDir, cancelled.workload_name);
    await waitFor("the cancelled workload's folder to go", async () => !(await exists(folder)), 5_000, 50).catch(
      () => undefined,
    );
    expect(await exists(folder)).to.equal(false);
    expect((await alice.workload(busy.workload_id)).status, 'its job is still queued').to.equal('scheduling');
    const metrics = parsePrometheus((await request(url).get('/metrics')).text);
    expect(metrics.value('dpip_deleted_workloads_total', { reason: 'retention' })).to.equal(2);
  });
});
