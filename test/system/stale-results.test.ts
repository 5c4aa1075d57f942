// A worker's result whose completion is refused (its lease moved on while the file was being kept,
// or before) leaves nothing behind: no file, no image record, no change to the job; the uploader
// gets 409, and the refusal is counted by reason in /metrics. Real server, real files; the worker is
// played by the test with a worker token, so the lease can move at the exact moment it matters.
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import type { Server } from '../../bin/server.js';
import { AppError } from '../../common/errors.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const WORKER = 'stand-in-worker';

describe('a refused result keeps nothing', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let png: Buffer;
  let result: Buffer;

  before(async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs);
    server = started.server;
    url = started.url;
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    png = await makeTestImage(40, 30, 'image/png', 3);
    result = await makeTestImage(40, 30, 'image/png', 4);
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  /** A new workload with one original whose job the stand-in worker holds, running. */
  async function heldJob(): Promise<{ workloadName: string; jobId: string; leaseId: string }> {
    const workload = await alice.createWorkload();
    const upload = await alice.upload(workload.workload_id, png, 'a.png', 'image/png');
    expect(upload.status).to.equal(201);
    const { controller } = server;
    const jobId = controller.store.data.images[String(upload.body.image_id)]?.job_id;
    if (!jobId) throw new Error('the original has no job');
    expect(controller.jobs.assign(jobId, WORKER).ok, 'assigned to the stand-in').to.equal(true);
    const leaseId = controller.store.data.jobs[jobId]?.lease?.lease_id;
    if (!leaseId) throw new Error('the job holds no lease');
    expect(controller.jobs.start(jobId, WORKER, leaseId).ok).to.equal(true);
    return { workloadName: workload.workload_name, jobId, leaseId };
  }

  async function filesOf(workloadName: string): Promise<string[]> {
    return readdir(path.join(dirs.imagesDir, workloadName));
  }

  /** A worker's result upload, as the worker sends it: the image as the body, the fields in the query. */
  function uploadResult(jobId: string, leaseId: string, image: Buffer): request.Test {
    const token = server.controller.tokens.issue(WORKER, 'worker').token;
    return request(url)
      .post(`/images?type=filtered&job_id=${jobId}&lease_id=${leaseId}`)
      .set('authorization', `Bearer ${token}`)
      .set('content-type', 'image/png')
      .send(image);
  }

  function filteredRecords(): number {
    return Object.values(server.controller.store.data.images).filter((image) => image.type === 'filtered').length;
  }

  it('the lease moves on while the result is being kept: 409, no file, no record, the job untouched', async () => {
    const { workloadName, jobId, leaseId } = await heldJob();
    const staged = server.controller.images.stagingPath();
    await writeFile(staged, result);
    const recordsBefore = filteredRecords();
    const keeping = server.controller.images.addFiltered(
      { type: 'filtered', job_id: jobId, lease_id: leaseId },
      WORKER,
      {
        content: { kind: 'staged', path: staged },
        bytes: result.length,
        mime: 'image/png',
        width: 40,
        height: 30,
      },
    );
    // the lease moves on while the upload is being kept (the worker was declared dead, say)
    expect(server.controller.jobs.release(jobId, WORKER, leaseId, 'the stand-in worker went silent').ok).to.equal(true);
    const refused = await keeping.then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).to.be.instanceOf(AppError);
    expect((refused as AppError).kind).to.equal('conflict');
    expect(await filesOf(workloadName), 'only the original is in the folder').to.have.length(1);
    expect(await readdir(path.join(dirs.imagesDir, '.incoming')), 'nothing left staged').to.deep.equal([]);
    expect(filteredRecords()).to.equal(recordsBefore);
    const job = server.controller.store.data.jobs[jobId];
    expect(job?.state).to.equal('queued');
    expect(job?.filtered_image_id).to.equal(null);
  });

  it('an upload after the lease moved on is answered 409 and keeps nothing; the refusal is counted', async () => {
    const { workloadName, jobId, leaseId } = await heldJob();
    expect(server.controller.jobs.release(jobId, WORKER, leaseId, 'the stand-in worker went silent').ok).to.equal(true);
    const recordsBefore = filteredRecords();
    const res = await uploadResult(jobId, leaseId, result);
    expect(res.status, res.text).to.equal(409);
    expect(res.body.error.message).to.match(/lease/);
    expect(await filesOf(workloadName)).to.have.length(1);
    expect(filteredRecords()).to.equal(recordsBefore);
    const metrics = parsePrometheus((await request(url).get('/metrics')).text);
    const counted = metrics.value('dpip_job_transitions_refused_total', {
      transition: 'complete',
      reason: 'lease_moved',
    });
    expect(counted).to.be.at.least(1);
  });

  it('the holder of the lease completes the job: 201, one file and one record', async () => {
    const { workloadName, jobId, leaseId } = await heldJob();
    const res = await uploadResult(jobId, leaseId, result);
    expect(res.status, res.text).to.equal(201);
    expect(server.controller.store.data.jobs[jobId]?.state).to.equal('done');
    expect(server.controller.store.data.jobs[jobId]?.filtered_image_id).to.equal(res.body.image_id);
    expect((await filesOf(workloadName)).sort()).to.have.length(2);
    const again = await uploadResult(jobId, leaseId, png);
    expect(again.status, 'a second result for a done job').to.equal(409);
    const kept = await alice.download(res.body.image_id);
    expect(kept.data.equals(result), 'the accepted result is unchanged').to.equal(true);
  });
});
