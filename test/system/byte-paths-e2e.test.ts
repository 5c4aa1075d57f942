// The three ways image bytes move, end to end with real server and worker processes: by path (workers
// that see the server's images folder), presigned (an S3-protocol store, the workers straight to it), and
// through the API (covered by e2e.test.ts). The course flow, a worker killed mid-run, and an outage of
// the object store that the system rides out by itself.
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage, sniffMime } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { setEnv, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { makeDirs, spawnServer, spawnWorker, type TestDirs } from '../helpers/system.js';

const IMAGES = 8;

async function uploadOriginals(client: TestClient, workloadId: string, count: number, seed: number): Promise<Buffer[]> {
  const originals: Buffer[] = [];
  for (let index = 0; index < count; index++) {
    const data = await makeTestImage(120 + 8 * index, 90, 'image/png', seed + index);
    const upload = await client.upload(workloadId, data, `${index}.png`, 'image/png');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
    originals.push(data);
  }
  return originals;
}

/** Every result is gray and as large as its original. */
async function checkGray(client: TestClient, done: WorkloadBody, originals: Buffer[]): Promise<void> {
  expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
  expect(done.filtered_images).to.have.length(originals.length);
  for (const [index, imageId] of done.filtered_images.entries()) {
    const result = await client.download(imageId);
    expect(result.status).to.equal(200);
    expect(sniffMime(result.data)).to.equal('image/png');
    const filtered = await decodeRgba(result.data);
    expect(filtered.width).to.equal(120 + 8 * index);
    expect(isGray(filtered, 0), `result ${index} is gray`).to.equal(true);
  }
}

/** Downloads of originals and results through GET /images/{id} so far, by the server's own metrics. */
async function imageDownloads(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parsePrometheus(text).sum('dpip_http_requests_total', { method: 'GET', route: '/images/:id' });
}

describe('bytes by path: workers that see the images folder', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let client: TestClient;
  let url: string;

  before(async () => {
    dirs = await makeDirs();
    const server = await spawnServer(dirs);
    url = server.url;
    for (const engine of ['sharp', 'jimp'] as const)
      spawnWorker({ controllerPort: server.controllerPort, name: engine, engine, slots: 2, imagesDir: dirs.imagesDir });
    client = await TestClient.login(server.url, 'alice', 'alice-pw');
  });

  after(async () => {
    await killAll();
    await dirs.remove();
  });

  it('filters a workload without one image crossing the API to a worker', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const originals = await uploadOriginals(client, workload.workload_id, IMAGES, 1);
    const done = await client.waitForCompletion(workload.workload_id, 90_000);
    expect(await imageDownloads(url), 'no worker downloaded an original over HTTP').to.equal(0);
    await checkGray(client, done, originals);
    // the folder's identity that the workers proved they see
    await access(path.join(dirs.imagesDir, '.store-id'));
    const files = await readFile(path.join(dirs.imagesDir, '.store-id'), 'utf8');
    expect(files.trim()).to.match(/^[0-9a-f-]{36}$/);
  });
});

describe('bytes presigned: an S3-protocol image store', function () {
  this.timeout(180_000);
  let dirs: TestDirs;
  let s3: TestS3Server;
  let client: TestClient;
  let url: string;
  let controllerPort: number;
  let serverProcess: Spawned;
  const workers: Spawned[] = [];
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    dirs = await makeDirs();
    s3 = await startS3Server();
    restoreEnv = setEnv(s3.env);
    const server = await spawnServer(dirs, [
      '--image-store',
      's3',
      '--s3-bucket',
      s3.bucket,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-prefix',
      'dpip/test',
      '--s3-force-path-style',
      // everything it logs, to check that no presigned URL is in it
      '--log-level',
      'debug',
    ]);
    serverProcess = server.process;
    url = server.url;
    controllerPort = server.controllerPort;
    for (const engine of ['sharp', 'jimp'] as const)
      workers.push(spawnWorker({ controllerPort, name: engine, engine, slots: 2, env: s3.env, logLevel: 'debug' }));
    client = await TestClient.login(server.url, 'alice', 'alice-pw');
  });

  after(async () => {
    await killAll();
    await s3?.close();
    await dirs.remove();
    restoreEnv();
  });

  it('runs the course flow with every byte in the bucket, under its prefix', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const originals = await uploadOriginals(client, workload.workload_id, IMAGES, 10);
    const done = await client.waitForCompletion(workload.workload_id, 90_000);
    expect(await imageDownloads(url), 'no worker downloaded an original through the API').to.equal(0);
    await checkGray(client, done, originals);
    const keys = (await s3.objectKeys()).filter((key) => key.startsWith(`dpip/test/${workload.workload_name}/`));
    expect(keys, 'originals and results, nothing else').to.have.length(2 * IMAGES);
    // a client that follows redirects gets the bytes from the store itself
    const redirected = await fetch(`${url}/images/${done.filtered_images[0]}?redirect=1`, {
      headers: client.headers(),
    });
    expect(redirected.status).to.equal(200);
    expect(redirected.redirected).to.equal(true);
    expect(new URL(redirected.url).port).to.equal(String(s3.port));
  });

  it('a worker killed mid-run: the other finishes every job, none fails', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const originals = await uploadOriginals(client, workload.workload_id, IMAGES, 30);
    workers[0]!.child.kill('SIGKILL');
    const done = await client.waitForCompletion(workload.workload_id, 90_000);
    await checkGray(client, done, originals);
    workers[0] = spawnWorker({ controllerPort, name: 'sharp-2', engine: 'sharp', slots: 2, env: s3.env });
  });

  it('the store down: uploads 503 and keep nothing, queued jobs wait, all recovers when it is back', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const before = await uploadOriginals(client, workload.workload_id, 2, 50);
    await client.waitForCompletion(workload.workload_id, 60_000);
    await s3.stop();
    const refused = await client.upload(workload.workload_id, before[0]!, 'x.png', 'image/png');
    expect(refused.status).to.equal(503);
    expect(JSON.stringify(refused.body)).to.match(/image store is unavailable/);
    const view = await client.workload(workload.workload_id);
    expect(view.total_images, 'the refused upload kept nothing').to.equal(2);
    await s3.start();
    // once it is back (the server probes it), uploads and jobs go on by themselves
    await waitFor('uploads to work again', async () => {
      const again = await client.upload(workload.workload_id, before[1]!, 'y.png', 'image/png');
      return again.status === 201;
    });
    const done = await client.waitForCompletion(workload.workload_id, 60_000);
    expect(done.failed_jobs).to.equal(0);
    expect(done.filtered_images).to.have.length(3);
  });

  it('jobs assigned while the store is down wait and complete once it is back, none failed', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const originals = await uploadOriginals(client, workload.workload_id, IMAGES, 70);
    await s3.stop();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const waiting = await client.workload(workload.workload_id);
    await s3.start();
    const done = await client.waitForCompletion(workload.workload_id, 90_000);
    await checkGray(client, done, originals);
    expect(waiting.failed_jobs).to.equal(0);
  });

  it('the store down: deletions answer at once, and their objects go once it is back', async () => {
    const kept = await client.createWorkload({ filter: 'grayscale', name: 'outage-kept' });
    const gone = await client.createWorkload({ filter: 'grayscale', name: 'outage-gone' });
    await uploadOriginals(client, kept.workload_id, 2, 110);
    await uploadOriginals(client, gone.workload_id, 2, 120);
    const keptDone = await client.waitForCompletion(kept.workload_id, 60_000);
    await client.waitForCompletion(gone.workload_id, 60_000);
    const objectsOf = async (name: string) =>
      (await s3.objectKeys()).filter((key) => key.startsWith(`dpip/test/${name}/`));
    const resultId = keptDone.filtered_images[0]!;
    expect(await objectsOf('outage-kept'), 'two originals and their results').to.have.length(4);
    await s3.stop();
    try {
      const deleted = await client.deleteWorkload(gone.workload_id);
      expect(deleted.status, JSON.stringify(deleted.body)).to.equal(200);
      expect(deleted.body).to.include({ workload_id: gone.workload_id, deleted: true, removed_images: 4 });
      expect((await client.call('GET', `/workloads/${gone.workload_id}`)).status).to.equal(404);
      const image = await client.deleteImage(resultId);
      expect(image.status, JSON.stringify(image.body)).to.equal(200);
      expect((await client.download(resultId)).status).to.equal(404);
      // until its objects are gone, its name is not free: a new workload of it could lose its own objects
      const again = await fetch(`${url}/workloads`, {
        method: 'POST',
        headers: { ...client.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ filter: 'grayscale', name: 'outage-gone' }),
      });
      expect(again.status).to.equal(409);
      expect(JSON.stringify(await again.json())).to.match(/still being removed/);
    } finally {
      await s3.start();
    }
    await waitFor('the deleted objects to go once the store is back', async () => {
      const kept = await objectsOf('outage-kept');
      const filtered = kept.filter((key) => key.includes('.filtered-'));
      return (await objectsOf('outage-gone')).length === 0 && kept.length === 3 && filtered.length === 1;
    });
    await waitFor('the name to be free again', async () => {
      const response = await fetch(`${url}/workloads`, {
        method: 'POST',
        headers: { ...client.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ filter: 'grayscale', name: 'outage-gone' }),
      });
      return response.status === 201;
    });
  });

  it('no presigned URL is in what the server or a worker logged', () => {
    const logs = [serverProcess, ...workers].map((spawned) => spawned.output()).join('\n');
    expect(logs).to.include('job');
    expect(logs).not.to.match(/X-Amz-Signature|X-Amz-Credential/i);
  });

  it('deleting the workload removes its objects from the bucket', async () => {
    const workload = await client.createWorkload({ filter: 'grayscale' });
    await uploadOriginals(client, workload.workload_id, 3, 90);
    await client.waitForCompletion(workload.workload_id, 60_000);
    const deleted = await client.deleteWorkload(workload.workload_id);
    expect(deleted.status).to.equal(200);
    await waitFor('its objects to go', async () => {
      const keys = await s3.objectKeys();
      return !keys.some((key) => key.startsWith(`dpip/test/${workload.workload_name}/`));
    });
  });
});
