// Upload slots, the way around the server for originals: POST /uploads gives an image id and a presigned
// PUT, the client puts the bytes in the object store itself, and POST /uploads/{id}/confirm makes it an
// original with a job once the object passed the checks of POST /images. An in-process server with a
// real S3-protocol store and a real worker process; and a server with a local images folder, which
// offers no slots.
import { expect } from 'chai';
import { startServer, type Server } from '../../bin/server.js';
import { createLogger } from '../../common/log.js';
import type { ImageStore } from '../../controller/image-store/index.js';
import { UploadSlots } from '../../controller/upload-slots.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { setEnv, startS3Server, storeConfigFor, type TestS3Server } from '../helpers/s3-server.js';
import { makeDirs, spawnWorker, startTestServer, testServerConfig, type TestDirs } from '../helpers/system.js';

const PREFIX = 'dpip-test';
/** The pixel cap of the server under test (--max-pixels): 100x100 fits, 120x100 does not. */
const MAX_PIXELS = 10_000;

interface Slot {
  image_id: string;
  workload_id: string;
  upload: { method: string; url: string; headers: Record<string, string>; bytes: number };
  expires_at: string;
  confirm: string;
  max_bytes: number;
}

/** A JSON call as the user: its status and body. */
async function call(
  client: TestClient,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = client.headers();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${client.url}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A slot for one original of the workload, of the length of `data` (201 expected). */
async function openSlot(
  client: TestClient,
  workloadId: string,
  data: Buffer,
  contentType = 'image/png',
): Promise<Slot> {
  const answer = await call(client, 'POST', '/uploads', {
    workload_id: workloadId,
    content_type: contentType,
    bytes: data.length,
  });
  expect(answer.status, JSON.stringify(answer.body)).to.equal(201);
  return answer.body as unknown as Slot;
}

/** PUTs the bytes at the slot's URL, with exactly its headers (no token), as a client does. */
async function put(slot: Slot, data: Buffer): Promise<number> {
  const response = await fetch(slot.upload.url, {
    method: slot.upload.method,
    headers: slot.upload.headers,
    body: data,
  });
  await response.arrayBuffer();
  return response.status;
}

function confirm(client: TestClient, slot: Slot): Promise<{ status: number; body: Record<string, unknown> }> {
  return call(client, 'POST', slot.confirm);
}

/** The error message of an API answer. */
function messageOf(body: Record<string, unknown>): string {
  return (body.error as { message: string }).message;
}

describe('upload slots, with object storage', function () {
  this.timeout(90_000);
  let dirs: TestDirs;
  let s3: TestS3Server;
  let server: Server;
  let url: string;
  let alice: TestClient;
  let bob: TestClient;
  let png: Buffer;
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    dirs = await makeDirs();
    s3 = await startS3Server();
    restoreEnv = setEnv(s3.env);
    const config = await testServerConfig(dirs, { imageStore: { kind: 's3', ...storeConfigFor(s3) } });
    config.api.maxPixels = MAX_PIXELS;
    server = await startServer(config, createLogger('test-server', 'silent'));
    url = `http://127.0.0.1:${server.api.port}`;
    spawnWorker({ controllerPort: config.controller.port, name: 'slots-worker', engine: 'sharp', env: s3.env });
    alice = await TestClient.login(url, 'alice', 'alice-pw');
    bob = await TestClient.login(url, 'bob', 'bob-pass');
    png = await makeTestImage(80, 60, 'image/png', 7);
  });

  after(async () => {
    await killAll();
    await server?.close();
    await s3?.close();
    await dirs?.remove();
    restoreEnv();
  });

  /** The slot's object key, read from its URL (path-style: /<bucket>/<key>). */
  function keyOf(slot: Slot): string {
    const path = decodeURIComponent(new URL(slot.upload.url).pathname);
    expect(path.startsWith(`/${s3.bucket}/`), path).to.equal(true);
    return path.slice(s3.bucket.length + 2);
  }

  async function inBucket(slot: Slot): Promise<boolean> {
    return (await s3.objectKeys()).includes(keyOf(slot));
  }

  /** Waits until the slot's object is gone from the bucket. */
  async function removed(slot: Slot): Promise<void> {
    await waitFor(`the object of slot ${slot.image_id} to go`, async () => !(await inBucket(slot)), 10_000, 50);
  }

  it('says it offers slots in GET /status', async () => {
    const status = await call(alice, 'GET', '/status');
    expect(status.status).to.equal(200);
    expect(status.body.uploads).to.deep.equal({ slots: true });
    expect(status.body.image_store).to.deep.equal({ kind: 's3', available: true });
  });

  it('gives a presigned PUT for the key of the original: its scope, read from the URL', async () => {
    const workload = await alice.createWorkload();
    const before = Date.now();
    const slot = await openSlot(alice, workload.workload_id, png);
    expect(slot.image_id).to.match(/^[0-9a-f-]{36}$/);
    expect(slot.workload_id).to.equal(workload.workload_id);
    expect(slot.confirm).to.equal(`/uploads/${slot.image_id}/confirm`);
    expect(slot.max_bytes).to.equal(5 * 1024 * 1024);
    expect(slot.upload.method).to.equal('PUT');
    expect(slot.upload.headers).to.deep.equal({ 'content-type': 'image/png' });
    expect(slot.upload.bytes).to.equal(png.length);
    const expires = Date.parse(slot.expires_at) - before;
    expect(expires).to.be.within(15 * 60_000 - 5000, 15 * 60_000 + 5000);
    const signed = new URL(slot.upload.url);
    expect(signed.origin).to.equal(s3.endpoint);
    expect(keyOf(slot)).to.equal(`${PREFIX}/${workload.workload_name}/${slot.image_id}.png`);
    expect(signed.searchParams.get('X-Amz-Expires')).to.equal('900');
    // the type and the length are signed: a store that checks signatures takes no other body
    expect(signed.searchParams.get('X-Amz-SignedHeaders')!.split(';')).to.include.members([
      'content-type',
      'content-length',
      'host',
    ]);
    expect(signed.searchParams.get('x-id')).to.equal('PutObject');
    expect(signed.searchParams.get('X-Amz-Algorithm')).to.equal('AWS4-HMAC-SHA256');
    // a JPEG slot is for a .jpg key
    const jpeg = await openSlot(alice, workload.workload_id, png, 'image/jpeg');
    expect(keyOf(jpeg)).to.equal(`${PREFIX}/${workload.workload_name}/${jpeg.image_id}.jpg`);
    expect(jpeg.upload.headers).to.deep.equal({ 'content-type': 'image/jpeg' });
  });

  it('slot, PUT, confirm: the original is listed, and a real worker completes its job', async () => {
    const workload = await alice.createWorkload({ filter: 'grayscale' });
    const slot = await openSlot(alice, workload.workload_id, png);
    expect(await put(slot, png)).to.equal(200);
    const confirmed = await confirm(alice, slot);
    expect(confirmed.status, JSON.stringify(confirmed.body)).to.equal(201);
    expect(confirmed.body).to.deep.equal({
      workload_id: workload.workload_id,
      image_id: slot.image_id,
      type: 'original',
      source_image_id: null,
    });
    const listed = (await alice.call('GET', `/images?workload_id=${workload.workload_id}`)).body.images as {
      image_id: string;
      type: string;
    }[];
    expect(listed.map((image) => [image.image_id, image.type])).to.deep.include([slot.image_id, 'original']);
    const done = await alice.waitForCompletion(workload.workload_id, 60_000);
    expect(done.total_images).to.equal(1);
    expect(done.done_jobs).to.equal(1);
    expect(done.filtered_images).to.have.length(1);
    // the original is the bytes that were put
    const original = await alice.download(slot.image_id);
    expect(original.status).to.equal(200);
    expect(Buffer.compare(original.data, png)).to.equal(0);
  });

  it('a JPEG whose frame header lies behind 60 KiB of metadata is read far enough to be checked', async () => {
    const workload = await alice.createWorkload();
    const jpeg = await makeTestImage(80, 60, 'image/jpeg', 4);
    // an APP1 segment of 60 KiB right after the start of image: the frame header comes after it
    const segment = Buffer.alloc(4 + 60 * 1024, 0x20);
    segment.writeUInt16BE(0xffe1, 0);
    segment.writeUInt16BE(segment.length - 2, 2);
    const padded = Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
    const slot = await openSlot(alice, workload.workload_id, padded, 'image/jpeg');
    expect(await put(slot, padded)).to.equal(200);
    const confirmed = await confirm(alice, slot);
    expect(confirmed.status, JSON.stringify(confirmed.body)).to.equal(201);
    const listed = (await alice.call('GET', `/images?workload_id=${workload.workload_id}`)).body.images as {
      width: number;
      height: number;
    }[];
    expect(listed.map((image) => [image.width, image.height])).to.deep.equal([[80, 60]]);
  });

  it('a confirm before the PUT is 409 and keeps the slot open: a later PUT and confirm work', async () => {
    const workload = await alice.createWorkload();
    const slot = await openSlot(alice, workload.workload_id, png);
    const early = await confirm(alice, slot);
    expect(early.status).to.equal(409);
    expect(messageOf(early.body)).to.match(/nothing was put at this slot yet/);
    expect(await put(slot, png)).to.equal(200);
    const later = await confirm(alice, slot);
    expect(later.status, JSON.stringify(later.body)).to.equal(201);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(1);
  });

  it('a JPEG put in a PNG slot is 415, and its object is removed', async () => {
    const workload = await alice.createWorkload();
    const jpeg = await makeTestImage(80, 60, 'image/jpeg', 3);
    const slot = await openSlot(alice, workload.workload_id, jpeg);
    expect(await put(slot, jpeg)).to.equal(200);
    expect(await inBucket(slot)).to.equal(true);
    const refused = await confirm(alice, slot);
    expect(refused.status).to.equal(415);
    expect(messageOf(refused.body)).to.equal('the slot is for image/png, the object is image/jpeg');
    await removed(slot);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
    // and the slot is closed
    expect((await confirm(alice, slot)).status).to.equal(404);
  });

  it('a file that is not an image is 415, and its object is removed', async () => {
    const workload = await alice.createWorkload();
    const text = Buffer.from('this is not an image, only some text that says so\n'.repeat(10));
    const slot = await openSlot(alice, workload.workload_id, text);
    expect(await put(slot, text)).to.equal(200);
    expect(await inBucket(slot)).to.equal(true);
    const refused = await confirm(alice, slot);
    expect(refused.status).to.equal(415);
    expect(messageOf(refused.body)).to.equal('the file is not a PNG or JPEG image');
    await removed(slot);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
  });

  it('an image over --max-pixels is 422, and its object is removed', async () => {
    const workload = await alice.createWorkload();
    const large = await makeTestImage(120, 100, 'image/png', 5);
    const slot = await openSlot(alice, workload.workload_id, large);
    expect(await put(slot, large)).to.equal(200);
    expect(await inBucket(slot)).to.equal(true);
    const refused = await confirm(alice, slot);
    expect(refused.status).to.equal(422);
    expect(messageOf(refused.body)).to.equal(`the image is 120x100 = 12000 pixels, over the limit of ${MAX_PIXELS}`);
    await removed(slot);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
  });

  it("someone else's slot is 404 to them, and stays the owner's", async () => {
    const workload = await alice.createWorkload();
    const slot = await openSlot(alice, workload.workload_id, png);
    expect(await put(slot, png)).to.equal(200);
    const stranger = await confirm(bob, slot);
    expect(stranger.status).to.equal(404);
    expect(messageOf(stranger.body)).to.equal(`no open upload slot "${slot.image_id}"`);
    // nor can a slot be opened for another user's workload
    const foreign = await call(bob, 'POST', '/uploads', {
      workload_id: workload.workload_id,
      content_type: 'image/png',
      bytes: png.length,
    });
    expect(foreign.status).to.equal(404);
    expect((await confirm(alice, slot)).status).to.equal(201);
  });

  it('a second confirm of the same slot is 404: one slot, one original', async () => {
    const workload = await alice.createWorkload();
    const slot = await openSlot(alice, workload.workload_id, png);
    expect(await put(slot, png)).to.equal(200);
    expect((await confirm(alice, slot)).status).to.equal(201);
    const again = await confirm(alice, slot);
    expect(again.status).to.equal(404);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(1);
    // the original stays
    expect(await inBucket(slot)).to.equal(true);
  });

  it('refuses a slot of another type (415), over the size limit (413), or for an unknown workload (404)', async () => {
    const workload = await alice.createWorkload();
    const webp = await call(alice, 'POST', '/uploads', {
      workload_id: workload.workload_id,
      content_type: 'image/webp',
    });
    expect(webp.status).to.equal(415);
    const large = await call(alice, 'POST', '/uploads', {
      workload_id: workload.workload_id,
      content_type: 'image/png',
      bytes: 5 * 1024 * 1024 + 1,
    });
    expect(large.status).to.equal(413);
    const unknown = await call(alice, 'POST', '/uploads', {
      workload_id: 'nope',
      content_type: 'image/png',
      bytes: png.length,
    });
    expect(unknown.status).to.equal(404);
  });

  it('refuses a slot without the length of its file (400), and nothing is opened', async () => {
    const workload = await alice.createWorkload();
    const open = (): number => Object.keys(server.controller.store.data.upload_slots).length;
    const before = open();
    for (const bytes of [undefined, 0, -5, 1.5, '100', null]) {
      const refused = await call(alice, 'POST', '/uploads', {
        workload_id: workload.workload_id,
        content_type: 'image/png',
        ...(bytes === undefined ? {} : { bytes }),
      });
      expect(refused.status, String(bytes)).to.equal(400);
      expect(messageOf(refused.body)).to.equal(
        '"bytes" must be the size of the file, a whole number of bytes (1 or more)',
      );
    }
    expect(open()).to.equal(before);
  });

  it('an object of another length than the slot was opened for is 422 at the confirm, and it is removed', async () => {
    // this test store takes any body; one that checks signatures refuses such a PUT itself (the length is signed)
    const workload = await alice.createWorkload();
    const slot = await openSlot(alice, workload.workload_id, png.subarray(0, 100));
    expect(await put(slot, png)).to.equal(200);
    const refused = await confirm(alice, slot);
    expect(refused.status).to.equal(422);
    expect(messageOf(refused.body)).to.equal(`the object is ${png.length} bytes, the slot was opened for 100`);
    await removed(slot);
    expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
    expect((await confirm(alice, slot)).status).to.equal(404);
  });

  describe('many slots in one request, confirmed in one', () => {
    interface Confirmed {
      confirmed: number;
      refused: number;
      results: Record<string, unknown>[];
    }

    async function openSlots(workloadId: string, files: Buffer[]): Promise<Slot[]> {
      const answer = await call(alice, 'POST', '/uploads', {
        workload_id: workloadId,
        images: files.map((data) => ({ content_type: 'image/png', bytes: data.length })),
      });
      expect(answer.status, JSON.stringify(answer.body)).to.equal(201);
      expect(answer.body.workload_id).to.equal(workloadId);
      expect(answer.body.max_bytes).to.equal(5 * 1024 * 1024);
      return answer.body.slots as Slot[];
    }

    async function confirmAll(client: TestClient, ids: string[]): Promise<Confirmed> {
      const answer = await call(client, 'POST', '/uploads/confirm', { image_ids: ids });
      expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
      return answer.body as unknown as Confirmed;
    }

    const openCount = (): number => Object.keys(server.controller.store.data.upload_slots).length;

    it('opens a slot for each file, in order, each with its own key and length; a worker completes all', async () => {
      const workload = await alice.createWorkload({ filter: 'grayscale' });
      const files = await Promise.all([30, 50, 70].map((width, seed) => makeTestImage(width, 40, 'image/png', seed)));
      const slots = await openSlots(workload.workload_id, files);
      expect(slots).to.have.length(3);
      expect(new Set(slots.map((slot) => slot.image_id)).size).to.equal(3);
      slots.forEach((slot, index) => {
        expect(slot.upload.bytes).to.equal(files[index]!.length);
        expect(slot.upload.headers).to.deep.equal({ 'content-type': 'image/png' });
        expect(keyOf(slot)).to.equal(`${PREFIX}/${workload.workload_name}/${slot.image_id}.png`);
        expect(slot.confirm).to.equal(`/uploads/${slot.image_id}/confirm`);
      });
      for (const [index, slot] of slots.entries()) expect(await put(slot, files[index]!)).to.equal(200);
      const confirmed = await confirmAll(
        alice,
        slots.map((slot) => slot.image_id),
      );
      expect(confirmed).to.deep.equal({
        confirmed: 3,
        refused: 0,
        results: slots.map((slot) => ({
          workload_id: workload.workload_id,
          image_id: slot.image_id,
          type: 'original',
          source_image_id: null,
          status: 201,
        })),
      });
      const done = await alice.waitForCompletion(workload.workload_id, 60_000);
      expect(done.done_jobs).to.equal(3);
      for (const [index, slot] of slots.entries())
        expect(Buffer.compare((await alice.download(slot.image_id)).data, files[index]!)).to.equal(0);
    });

    it('answers each slot of a batch confirm as its own confirm would; one not put yet stays open', async () => {
      const workload = await alice.createWorkload();
      const [good, notYet, short] = await openSlots(workload.workload_id, [png, png, png.subarray(0, 100)]);
      expect(await put(good!, png)).to.equal(200);
      expect(await put(short!, png)).to.equal(200);
      const bobs = await call(bob, 'POST', '/uploads', {
        workload_id: (await bob.createWorkload()).workload_id,
        images: [{ content_type: 'image/png', bytes: png.length }],
      });
      const bobSlot = (bobs.body.slots as Slot[])[0]!;
      const ids = [good!.image_id, notYet!.image_id, short!.image_id, 'no-such-slot', bobSlot.image_id];
      const answer = await confirmAll(alice, ids);
      expect(answer.confirmed).to.equal(1);
      expect(answer.refused).to.equal(4);
      expect(answer.results.map((result) => [result.image_id, result.status])).to.deep.equal([
        [good!.image_id, 201],
        [notYet!.image_id, 409],
        [short!.image_id, 422],
        ['no-such-slot', 404],
        [bobSlot.image_id, 404],
      ]);
      expect(answer.results[2]).to.deep.include({
        error: { code: 422, message: `the object is ${png.length} bytes, the slot was opened for 100` },
      });
      await removed(short!);
      expect((await alice.workload(workload.workload_id)).total_images).to.equal(1);
      // the slot not put yet stays open, bob's stays bob's
      expect(await put(notYet!, png)).to.equal(200);
      expect((await confirm(alice, notYet!)).status).to.equal(201);
      expect(await put(bobSlot, png)).to.equal(200);
      expect((await confirm(bob, bobSlot)).status).to.equal(201);
    });

    it('refuses a batch with one bad file, naming it, and opens none of it', async () => {
      const workload = await alice.createWorkload();
      const before = openCount();
      const good = { content_type: 'image/png', bytes: png.length };
      const refusals: [unknown, number, string][] = [
        [
          [good, { content_type: 'image/webp', bytes: 10 }],
          415,
          'images[1]: "content_type" must be "image/png" or "image/jpeg"',
        ],
        [
          [good, good, { content_type: 'image/png' }],
          400,
          'images[2]: "bytes" must be the size of the file, a whole number of bytes (1 or more)',
        ],
        [
          [{ content_type: 'image/png', bytes: 5 * 1024 * 1024 + 1 }],
          413,
          'images[0]: the file is larger than the limit of 5242880 bytes',
        ],
        [[good, 'image/png'], 415, 'images[1]: "content_type" must be "image/png" or "image/jpeg"'],
        [[], 400, '"images" must be a list of 1 to 100 files, each {"content_type", "bytes"}'],
        [
          Array.from({ length: 101 }, () => good),
          400,
          '"images" must be a list of 1 to 100 files, each {"content_type", "bytes"}',
        ],
        [good, 400, '"images" must be a list of 1 to 100 files, each {"content_type", "bytes"}'],
      ];
      for (const [images, status, message] of refusals) {
        const refused = await call(alice, 'POST', '/uploads', { workload_id: workload.workload_id, images });
        expect(refused.status, message).to.equal(status);
        expect(messageOf(refused.body)).to.equal(message);
      }
      const beside = await call(alice, 'POST', '/uploads', {
        workload_id: workload.workload_id,
        content_type: 'image/png',
        images: [good],
      });
      expect(beside.status).to.equal(400);
      expect(messageOf(beside.body)).to.equal('"content_type" goes in each of "images", not beside it');
      expect(openCount()).to.equal(before);
    });

    it('refuses a confirm list empty, too long, not of ids, or naming a slot twice: none confirmed', async () => {
      const workload = await alice.createWorkload();
      const [slot] = await openSlots(workload.workload_id, [png]);
      expect(await put(slot!, png)).to.equal(200);
      const lists: [unknown, string][] = [
        [[], '"image_ids" must be a list of 1 to 100 slots\' image ids'],
        [
          Array.from({ length: 101 }, (_, index) => `id-${index}`),
          '"image_ids" must be a list of 1 to 100 slots\' image ids',
        ],
        [[slot!.image_id, 7], '"image_ids" must be a list of 1 to 100 slots\' image ids'],
        [slot!.image_id, '"image_ids" must be a list of 1 to 100 slots\' image ids'],
        [[slot!.image_id, slot!.image_id], '"image_ids" names a slot twice'],
      ];
      for (const [ids, message] of lists) {
        const refused = await call(alice, 'POST', '/uploads/confirm', { image_ids: ids });
        expect(refused.status, message).to.equal(400);
        expect(messageOf(refused.body)).to.equal(message);
      }
      expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
      expect((await confirm(alice, slot!)).status).to.equal(201);
    });

    it('refuses a batch that would pass the open slots a user may hold (429), opening none of it', async () => {
      const workload = await bob.createWorkload();
      const asked = { content_type: 'image/png', bytes: png.length };
      for (let opened = 0; opened < 950; opened += 95) {
        const answer = await call(bob, 'POST', '/uploads', {
          workload_id: workload.workload_id,
          images: Array.from({ length: 95 }, () => asked),
        });
        expect(answer.status).to.equal(201);
      }
      const before = openCount();
      const over = await call(bob, 'POST', '/uploads', {
        workload_id: workload.workload_id,
        images: Array.from({ length: 51 }, () => asked),
      });
      expect(over.status).to.equal(429);
      expect(messageOf(over.body)).to.match(/upload slots are open and 51 more were asked for/);
      expect(openCount()).to.equal(before);
      // two requests at once for the last 50, while the store takes 100 ms to sign each URL: one is opened, the
      // other refused, never both
      const real = server.controller.imageStore;
      const slowSigning: ImageStore = Object.assign(Object.create(real) as ImageStore, {
        presign: async (...args: Parameters<ImageStore['presign']>) => {
          await new Promise((resolve) => setTimeout(resolve, 100));
          return real.presign(...args);
        },
      });
      const original = server.controller.uploads;
      const slow = new UploadSlots(server.controller.store, slowSigning, createLogger('test-slots', 'silent'));
      Object.assign(server.controller, { uploads: slow });
      try {
        const both = await Promise.all(
          [1, 2].map(() =>
            call(bob, 'POST', '/uploads', {
              workload_id: workload.workload_id,
              images: Array.from({ length: 50 }, () => asked),
            }),
          ),
        );
        expect(both.map((answer) => answer.status).sort()).to.deep.equal([201, 429]);
        expect(openCount()).to.equal(before + 50);
      } finally {
        slow.stop();
        Object.assign(server.controller, { uploads: original });
      }
    });
  });

  describe('slots that expire (a short-lived UploadSlots in place of the server one)', () => {
    let original: UploadSlots;
    let short: UploadSlots | null = null;

    before(() => {
      original = server.controller.uploads;
    });

    afterEach(() => {
      short?.stop();
      short = null;
      Object.assign(server.controller, { uploads: original });
    });

    /** Slots that are open `slotMs`; without their periodic sweep when `sweep` is false. */
    function shortSlots(slotMs: number, sweep: boolean): void {
      short = new UploadSlots(
        server.controller.store,
        server.controller.imageStore,
        createLogger('test-slots', 'silent'),
        slotMs,
      );
      if (!sweep) short.stop();
      Object.assign(server.controller, { uploads: short });
    }

    it('a confirm after the slot expired is 410, and what was put is removed', async () => {
      shortSlots(1500, false);
      const workload = await alice.createWorkload();
      const slot = await openSlot(alice, workload.workload_id, png);
      expect(Date.parse(slot.expires_at) - Date.now()).to.be.at.most(1500);
      expect(await put(slot, png)).to.equal(200);
      expect(await inBucket(slot)).to.equal(true);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(slot.expires_at) - Date.now()) + 100));
      const late = await confirm(alice, slot);
      expect(late.status).to.equal(410);
      expect(messageOf(late.body)).to.equal(`upload slot "${slot.image_id}" expired: ask for a new one`);
      await removed(slot);
      expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
      // gone for good
      expect((await confirm(alice, slot)).status).to.equal(404);
    });

    it('a slot never confirmed is swept once it expires: its object goes', async () => {
      shortSlots(1000, true);
      const workload = await alice.createWorkload();
      const slot = await openSlot(alice, workload.workload_id, png);
      expect(await put(slot, png)).to.equal(200);
      expect(await inBucket(slot)).to.equal(true);
      await removed(slot);
      expect((await confirm(alice, slot)).status).to.equal(404);
      expect((await alice.workload(workload.workload_id)).total_images).to.equal(0);
    });
  });
});

describe('upload slots, with a local images folder', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let server: Server;
  let alice: TestClient;

  before(async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs);
    server = started.server;
    alice = await TestClient.login(started.url, 'alice', 'alice-pw');
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  it('offers none: GET /status says so, and POST /uploads is 409', async () => {
    const status = await call(alice, 'GET', '/status');
    expect(status.body.uploads).to.deep.equal({ slots: false });
    expect(status.body.image_store).to.deep.equal({ kind: 'local', available: true });
    const workload = await alice.createWorkload();
    const refused = await call(alice, 'POST', '/uploads', {
      workload_id: workload.workload_id,
      content_type: 'image/png',
      bytes: 100,
    });
    expect(refused.status).to.equal(409);
    expect(messageOf(refused.body)).to.match(/upload through POST \/images \(upload slots need object storage\)/);
    // POST /images is the way
    const upload = await alice.upload(
      workload.workload_id,
      await makeTestImage(40, 30, 'image/png', 1),
      'a.png',
      'image/png',
    );
    expect(upload.status).to.equal(201);
  });
});
