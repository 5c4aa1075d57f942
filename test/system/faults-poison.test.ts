// A poison image (valid PNG header, corrupt or truncated body) among good ones, on real worker
// processes of both engines: its job fails once, with the decode error recorded, and is not retried.
import { expect } from 'chai';
import type { Server } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { filteredPerOriginal, liveWorker, seconds, sleep } from '../helpers/restart.js';
import { makeDirs, spawnWorker, startTestServer, type TestDirs } from '../helpers/system.js';

/** The first half of a valid PNG: signature and IHDR intact, image data cut off. */
async function truncatedPng(seed: number): Promise<Buffer> {
  const png = await makeTestImage(320, 240, 'image/png', seed);
  return png.subarray(0, Math.floor(png.length / 2));
}

/** A valid PNG signature and IHDR (320x240) followed by bytes that are no PNG chunks at all. */
async function corruptPng(seed: number): Promise<Buffer> {
  const png = await makeTestImage(320, 240, 'image/png', seed);
  return Buffer.concat([png.subarray(0, 8 + 25), Buffer.alloc(4096, 0x5a)]);
}

describe('faults: a poison image', function () {
  this.timeout(120_000);
  let dirs: TestDirs | null = null;
  let server: Server | null = null;

  afterEach(async () => {
    await killAll();
    try {
      await server?.close();
    } finally {
      server = null;
      await dirs?.remove();
      dirs = null;
    }
  });

  it(
    'fails once with its decode error recorded and shown, is not retried, ' +
      'and the workload completes with every good image filtered',
    async () => {
      dirs = await makeDirs();
      const started = await startTestServer(dirs, { leaseMs: 2000, heartbeatMs: 500 });
      server = started.server;
      const s = started.server;
      const controllerPort = started.config.controller.port;
      // one worker per engine; each workload is tagged to run on one of them
      spawnWorker({ controllerPort, name: 'poison-sharp', engine: 'sharp', slots: 2, tags: ['sharp'] });
      spawnWorker({ controllerPort, name: 'poison-jimp', engine: 'jimp', slots: 2, tags: ['jimp'] });
      await waitFor(
        'both workers to register',
        async () => ['poison-sharp', 'poison-jimp'].every((name) => liveWorker(s, name)?.state === 'alive'),
        30_000,
        20,
      );
      const client = await TestClient.login(started.url, 'alice', 'alice-pw');

      const good = await Promise.all([1, 2, 3, 4].map((seed) => makeTestImage(320, 240, 'image/png', 300 + seed)));
      const poison = [await truncatedPng(401), await corruptPng(402)];
      const runs = await Promise.all(
        (['sharp', 'jimp'] as const).map(async (engine) => {
          const workload = await client.createWorkload({ filter: 'grayscale', tags: [engine] });
          const poisonIds: string[] = [];
          // good, poison, good, good, poison, good
          for (const [index, data] of [good[0]!, poison[0]!, good[1]!, good[2]!, poison[1]!, good[3]!].entries()) {
            const upload = await client.upload(workload.workload_id, data, `${index}.png`, 'image/png');
            expect(
              upload.status,
              `upload ${index}: the API checks only the header\n${JSON.stringify(upload.body)}`,
            ).to.equal(201);
            if (poison.includes(data)) poisonIds.push(upload.body.image_id!);
          }
          const done = await client.waitForCompletion(workload.workload_id, 60_000);
          return { engine, workload: done, poisonIds };
        }),
      );

      for (const { engine, workload, poisonIds } of runs) {
        const data = s.controller.store.data;
        const jobs = poisonIds.map((id) => data.jobs[data.images[id]!.job_id!]!);
        const failedAfter = jobs.map((job) =>
          seconds(Date.parse(job.finished_at ?? '') - Date.parse(data.images[job.image_id]!.created_at)),
        );
        console.log(
          `  recovery: poison image (${engine}) -> failed for good ${failedAfter.join(' s, ')} s after upload, ` +
            `attempts ${jobs.map((job) => job.attempts).join(', ')}: ` +
            `${jobs.map((job) => JSON.stringify(job.error)).join('; ')}`,
        );
        expect(workload.status).to.equal('completed');
        expect(workload.failed_jobs, engine).to.equal(2);
        expect(workload.done_jobs, engine).to.equal(4);
        expect(workload.failures.map((failure) => failure.image_id).sort(), engine).to.deep.equal(
          [...poisonIds].sort(),
        );
        for (const failure of workload.failures)
          expect(failure.error, `${engine}: the decode error is shown`).to.match(/decode/i);
        for (const job of jobs) {
          expect(job.state).to.equal('failed');
          expect(job.attempts, `${engine}: one attempt, no retry`).to.equal(1);
          expect(job.error, engine).to.match(/decode/i);
        }
        // every good image filtered once, the poison ones not at all
        const perOriginal = filteredPerOriginal(data, workload.workload_id);
        for (const [original, count] of perOriginal)
          expect(count, `${engine}: filtered images of ${original}`).to.equal(poisonIds.includes(original) ? 0 : 1);
        expect(workload.filtered_images).to.have.length(4);
        for (const imageId of workload.filtered_images) {
          const result = await client.download(imageId);
          expect(result.status).to.equal(200);
          expect(isGray(await decodeRgba(result.data)), `${engine}: filtered image ${imageId}`).to.equal(true);
        }
      }

      // and they stay failed: no retry comes later
      await sleep(1500);
      for (const { poisonIds } of runs) {
        for (const id of poisonIds) {
          const job = s.controller.store.data.jobs[s.controller.store.data.images[id]!.job_id!]!;
          expect([job.state, job.attempts, job.lease]).to.deep.equal(['failed', 1, null]);
        }
      }
    },
  );
});
