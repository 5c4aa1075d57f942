// The byte paths that skip the API, on both image stores: a worker (played by the test with a worker
// token, so each step can be checked) puts its result where its assignment says, by path into the
// local folder or by the presigned PUT into object storage, and reports it with stored=true; the
// server checks the object before the job completes. Real server, real files, a real S3-protocol server.
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { expect } from 'chai';
import sharp from 'sharp';
import type { Server } from '../../bin/server.js';
import type { Transfers } from '../../controller/index.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { setEnv, startS3Server, storeConfigFor, type TestS3Server } from '../helpers/s3-server.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const WORKER = 'stand-in-worker';

for (const kind of ['local', 's3'] as const) {
  describe(`results a worker stores itself (${kind} image store)`, function () {
    this.timeout(60_000);
    let dirs: TestDirs;
    let s3: TestS3Server | null = null;
    let server: Server;
    let url: string;
    let alice: TestClient;
    let png: Buffer;
    let result: Buffer;
    let restoreEnv: () => void = () => undefined;

    before(async () => {
      dirs = await makeDirs();
      if (kind === 's3') {
        s3 = await startS3Server();
        restoreEnv = setEnv(s3.env);
      }
      const started = await startTestServer(dirs, s3 ? { imageStore: { kind: 's3', ...storeConfigFor(s3) } } : {});
      server = started.server;
      url = started.url;
      alice = await TestClient.login(url, 'alice', 'alice-pw');
      png = await makeTestImage(40, 30, 'image/png', 3);
      result = await makeTestImage(40, 30, 'image/png', 4);
    });

    after(async () => {
      await server?.close();
      await s3?.close();
      await dirs?.remove();
      restoreEnv();
    });

    /** A new original whose job the stand-in worker holds, running, and where its bytes go. */
    async function heldJob(): Promise<{ jobId: string; leaseId: string; imageId: string; transfers: Transfers }> {
      const workload = await alice.createWorkload();
      const upload = await alice.upload(workload.workload_id, png, 'a.png', 'image/png');
      expect(upload.status).to.equal(201);
      const { controller } = server;
      const imageId = String(upload.body.image_id);
      const jobId = controller.store.data.images[imageId]!.job_id!;
      expect(controller.jobs.assign(jobId, WORKER).ok).to.equal(true);
      const leaseId = controller.store.data.jobs[jobId]!.lease!.lease_id;
      expect(controller.jobs.start(jobId, WORKER, leaseId).ok).to.equal(true);
      // the stand-in sees the images folder, as a worker on the server's machine that proved it
      const transfers = await controller.transfers.forJob(jobId, true, leaseId);
      return { jobId, leaseId, imageId, transfers };
    }

    /** Reads the original the way the assignment says. */
    async function fetchOriginal(transfers: Transfers): Promise<Buffer> {
      const { source } = transfers;
      if (source.via === 'url') {
        const response = await fetch(source.url, { headers: source.headers ?? {} });
        expect(response.status).to.equal(200);
        return Buffer.from(await response.arrayBuffer());
      }
      if (source.via !== 'path') throw new Error(`unexpected source ${source.via}`);
      const opened = await server.controller.imageStore.open(source.key);
      if (!opened) throw new Error('no original at its key');
      const chunks: Buffer[] = [];
      for await (const chunk of opened.body) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }

    /** Puts the bytes where the assignment's target says. */
    async function putResult(transfers: Transfers, bytes: Buffer): Promise<void> {
      const { target } = transfers;
      if (target.via === 'url') {
        const response = await fetch(target.url, { method: 'PUT', headers: target.headers ?? {}, body: bytes });
        expect(response.status).to.equal(200);
        return;
      }
      if (target.via !== 'path') throw new Error(`unexpected target ${target.via}`);
      await writeFile(server.controller.imageStore.localPath(target.key)!, bytes);
    }

    function report(jobId: string, leaseId: string): Promise<Response> {
      const token = server.controller.tokens.issue(WORKER, 'worker').token;
      return fetch(`${url}/images?type=filtered&job_id=${jobId}&lease_id=${leaseId}&stored=true`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    }

    async function exists(key: string): Promise<boolean> {
      return (await server.controller.imageStore.inspect(key, 0)) !== null;
    }

    function targetKey(transfers: Transfers): string {
      const { target } = transfers;
      if (target.via === 'path') return target.key;
      if (target.via !== 'url') throw new Error('no direct target');
      return decodeURIComponent(new URL(target.url).pathname).split('/').slice(-2).join('/');
    }

    const paths = kind === 'local' ? 'paths' : 'presigned URLs';
    it(`assigns ${paths} both ways, each lease its own result key`, async () => {
      const { transfers, leaseId, imageId } = await heldJob();
      const via = kind === 'local' ? 'path' : 'url';
      expect(transfers.source.via).to.equal(via);
      expect(transfers.target.via).to.equal(via);
      expect(targetKey(transfers)).to.match(
        new RegExp(`/${imageId}\\.filtered-${leaseId.replaceAll('-', '').slice(0, 12)}\\.png$`),
      );
      expect(Buffer.compare(await fetchOriginal(transfers), png)).to.equal(0);
    });

    /** The stand-in puts the result and reports it: 201; the filtered image's id. */
    async function storeAndReport(jobId: string, leaseId: string, transfers: Transfers): Promise<string> {
      await putResult(transfers, result);
      const answer = await report(jobId, leaseId);
      expect(answer.status).to.equal(201);
      return ((await answer.json()) as { image_id: string }).image_id;
    }

    /** The user downloads the filtered image: the very bytes the stand-in put. */
    async function expectResultDownloads(filteredId: string): Promise<void> {
      const downloaded = await alice.download(filteredId);
      expect(downloaded.status).to.equal(200);
      expect(Buffer.compare(downloaded.data, result)).to.equal(0);
    }

    it('a stored result completes the job: 201, and the user downloads those very bytes', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      const filteredId = await storeAndReport(jobId, leaseId, transfers);
      const job = server.controller.store.data.jobs[jobId]!;
      expect(job.state).to.equal('done');
      expect(job.filtered_image_id).to.equal(filteredId);
      await expectResultDownloads(filteredId);
    });

    it('a report sent again after the job completed (answer lost) gets the first answer, the result kept', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      const filteredId = await storeAndReport(jobId, leaseId, transfers);
      const images = Object.keys(server.controller.store.data.images).length;
      // as a worker sends it again to the new leader when its server was killed after the commit, before answering
      const again = await report(jobId, leaseId);
      expect(again.status).to.equal(201);
      expect(((await again.json()) as { image_id: string }).image_id).to.equal(filteredId);
      expect(Object.keys(server.controller.store.data.images), 'no second record').to.have.length(images);
      expect(await exists(targetKey(transfers)), 'the accepted result is still at its key').to.equal(true);
      await expectResultDownloads(filteredId);
      // another lease's report for the done job is still refused
      expect((await report(jobId, randomUUID())).status).to.equal(409);
    });

    it('a result missing at its key fails that attempt (422), not the job', async () => {
      const { jobId, leaseId } = await heldJob();
      const answer = await report(jobId, leaseId);
      expect(answer.status).to.equal(422);
      expect(((await answer.json()) as { error: { message: string } }).error.message).to.match(/not found/);
      const job = server.controller.store.data.jobs[jobId]!;
      expect(job.state, 'back in the queue for another attempt').to.equal('queued');
      expect(job.attempts).to.equal(1);
      expect(job.error).to.match(/stored result was refused/);
    });

    it('a result of the wrong type is refused (422) and its object removed', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      const jpeg = await makeTestImage(40, 30, 'image/jpeg', 5);
      await putResult(transfers, jpeg);
      const answer = await report(jobId, leaseId);
      expect(answer.status).to.equal(422);
      expect(server.controller.store.data.jobs[jobId]!.state).to.equal('queued');
      expect(await exists(targetKey(transfers)), 'the refused object is gone').to.equal(false);
    });

    /** Reports several stored results in one request, as a worker whose results finished together does. */
    function reportTogether(body: unknown, token = server.controller.tokens.issue(WORKER, 'worker').token) {
      return fetch(`${url}/results`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    }

    it('results reported together are each answered as their own report: kept, missing, stale', async () => {
      const kept = await heldJob();
      await putResult(kept.transfers, result);
      const missing = await heldJob();
      const stale = await heldJob();
      await putResult(stale.transfers, result);
      expect(
        server.controller.jobs.release(stale.jobId, WORKER, stale.leaseId, 'the stand-in went silent').ok,
      ).to.equal(true);
      const results = [kept, missing, stale].map(({ jobId, leaseId }) => ({ job_id: jobId, lease_id: leaseId }));
      const answer = await reportTogether({ results });
      expect(answer.status).to.equal(200);
      const { results: answers } = (await answer.json()) as {
        results: Array<{ job_id: string; status: number; image_id?: string; error?: { message: string } }>;
      };
      expect(answers.map((item) => [item.job_id, item.status])).to.deep.equal([
        [kept.jobId, 201],
        [missing.jobId, 422],
        [stale.jobId, 409],
      ]);
      expect(answers[1]!.error!.message).to.match(/not found/);
      const { jobs } = server.controller.store.data;
      expect(jobs[kept.jobId]!.state).to.equal('done');
      expect(jobs[kept.jobId]!.filtered_image_id).to.equal(answers[0]!.image_id);
      await expectResultDownloads(answers[0]!.image_id!);
      expect(jobs[missing.jobId]!.state, 'its attempt failed, not the job').to.equal('queued');
      expect(await exists(targetKey(stale.transfers)), "the stale lease's object is gone").to.equal(false);
      // sent again (its answer lost), the kept one gets the first answer
      const again = await reportTogether({ results: results.slice(0, 1) });
      const [first] = ((await again.json()) as { results: Array<{ status: number; image_id: string }> }).results;
      expect([first!.status, first!.image_id]).to.deep.equal([201, answers[0]!.image_id]);
    });

    it('a report of results refuses a user, a bad body and a job named twice, and changes nothing', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      await putResult(transfers, result);
      const one = { job_id: jobId, lease_id: leaseId };
      const refusals: Array<[unknown, number, RegExp, string?]> = [
        [{ results: [one] }, 403, /only workers/, alice.token],
        [{ results: [] }, 400, /"results" must be a list/],
        [{ results: [{ job_id: jobId }] }, 400, /"results" must be a list/],
        [{ results: Array.from({ length: 65 }, () => one) }, 400, /"results" must be a list/],
        [{ results: [one, one] }, 400, /names a job twice/],
        [[one], 400, /object/],
      ];
      for (const [body, status, message, token] of refusals) {
        const answer = await reportTogether(body, token);
        expect(answer.status, JSON.stringify(body).slice(0, 80)).to.equal(status);
        expect(((await answer.json()) as { error: { message: string } }).error.message).to.match(message);
      }
      expect(server.controller.store.data.jobs[jobId]!.state, 'still running').to.equal('running');
      expect(await exists(targetKey(transfers)), 'the stored result is still there').to.equal(true);
    });

    it('a stale lease reports in vain (409) and what it wrote goes', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      expect(server.controller.jobs.release(jobId, WORKER, leaseId, 'the stand-in went silent').ok).to.equal(true);
      // a late PUT after the lease ended (its URL was still good)
      await putResult(transfers, result);
      const answer = await report(jobId, leaseId);
      expect(answer.status).to.equal(409);
      expect(await exists(targetKey(transfers))).to.equal(false);
      expect(server.controller.store.data.jobs[jobId]!.filtered_image_id).to.equal(null);
    });

    it('a lease that ends removes what its worker had already put at its key', async () => {
      const { jobId, leaseId, transfers } = await heldJob();
      await putResult(transfers, result);
      expect(server.controller.jobs.fail(jobId, WORKER, leaseId, 'gave up', true).ok).to.equal(true);
      const key = targetKey(transfers);
      const deadline = Date.now() + 5000;
      while ((await exists(key)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await exists(key)).to.equal(false);
    });

    const redirect = kind === 's3' ? 'answers 302 to a presigned GET' : 'sends the bytes';
    it(`GET /images/{id}?redirect=1 ${redirect}`, async () => {
      const { imageId } = await heldJob();
      const response = await fetch(`${url}/images/${imageId}?redirect=1`, {
        headers: alice.headers(),
        redirect: 'manual',
      });
      if (kind === 'local') {
        expect(response.status).to.equal(200);
        expect(Buffer.compare(Buffer.from(await response.arrayBuffer()), png)).to.equal(0);
        return;
      }
      expect(response.status).to.equal(302);
      const location = new URL(response.headers.get('location')!);
      expect(location.pathname).to.match(new RegExp(`/${imageId}\\.png$`));
      expect(location.searchParams.get('X-Amz-Expires')).to.equal('300');
      expect(location.searchParams.get('x-id')).to.equal('GetObject');
      const followed = await fetch(location);
      expect(Buffer.compare(Buffer.from(await followed.arrayBuffer()), png)).to.equal(0);
      const meta = await sharp(png).metadata();
      expect(meta.width).to.equal(40);
    });
  });
}
