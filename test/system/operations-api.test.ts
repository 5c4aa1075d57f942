// Workloads of operations through the REST API, before any worker runs them: the chain is checked at
// creation (422 naming the step), listed with every default filled in, applied to each upload's size (a
// crop outside the image or a result past the pixel cap is 422 at once), and a workload no live worker
// can run says why.
import { expect } from 'chai';
import sharp from 'sharp';
import type { Server } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

describe('operations through the API', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;

  before(async () => {
    dirs = await makeDirs();
    ({ server, url } = await startTestServer(dirs));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  async function create(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${url}/workloads`, {
      method: 'POST',
      headers: { ...alice.headers(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('GET /operations lists every operation with its parameters, ranges and defaults', async () => {
    const response = await fetch(`${url}/operations`);
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { operations: { op: string; params: { name: string }[] }[] };
    expect(body.operations.map((operation) => operation.op)).to.include.members([
      'grayscale',
      'blur',
      'sharpen',
      'resize',
      'thumbnail',
      'crop',
      'rotate',
      'auto_orient',
      'flip',
      'flop',
      'format',
    ]);
    expect(body).to.include({ max_steps: 16 });
  });

  it('creates a workload of operations, shown with its defaults; a course workload shows both', async () => {
    const created = await create({
      operations: [{ op: 'resize', width: 640 }, { op: 'grayscale' }, { op: 'format', type: 'webp', quality: 80 }],
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    expect(created.body.filter).to.equal(null);
    expect(created.body.operations).to.deep.equal([
      { op: 'resize', width: 640, height: null, fit: 'cover', enlarge: false },
      { op: 'grayscale' },
      { op: 'format', type: 'webp', quality: 80 },
    ]);
    const course = await alice.createWorkload({ filter: 'blur' });
    expect(course.filter).to.equal('blur');
    expect((course as unknown as { operations: unknown[] }).operations).to.have.length(1);

    // a form sends the chain as JSON text
    const form = await fetch(`${url}/workloads`, {
      method: 'POST',
      headers: alice.headers(),
      body: new URLSearchParams({ operations: '[{"op":"flip"}]' }),
    });
    expect(form.status).to.equal(201);
    expect(((await form.json()) as { operations: unknown[] }).operations).to.deep.equal([{ op: 'flip' }]);
  });

  it('refuses a bad chain with 422 naming the step and what is allowed, and changes nothing', async () => {
    const before = Object.keys(server.controller.store.data.workloads).length;
    const cases: [unknown, RegExp][] = [
      [{ operations: [{ op: 'sepia' }] }, /step 1: unknown operation "sepia": use one of/],
      [{ operations: [{ op: 'resize', width: 99999 }] }, /step 1 \(resize\): "width" must be a whole number from 1/],
      [{ operations: [{ op: 'format', type: 'png' }, { op: 'flip' }] }, /may only be the last step/],
      [{ operations: Array.from({ length: 17 }, () => ({ op: 'flip' })) }, /at most 16 steps/],
      [{ operations: [{ op: 'flip' }], filter: 'grayscale' }, /not both/],
      [{ operations: 'not json' }, /JSON list/],
      [
        { operations: [{ op: 'resize', width: 10000, height: 10000, fit: 'fill', enlarge: true }] },
        /step 1 \(resize\) makes a 10000x10000 image, more than the 50000000 pixels/,
      ],
    ];
    for (const [body, message] of cases) {
      const answer = await create(body);
      expect(answer.status, JSON.stringify(body)).to.equal(422);
      expect((answer.body.error as { message: string }).message, JSON.stringify(body)).to.match(message);
    }
    expect(Object.keys(server.controller.store.data.workloads).length).to.equal(before);
  });

  it('an upload the chain cannot apply to is 422 at once: a crop outside it', async () => {
    const created = await create({ operations: [{ op: 'crop', left: 10, top: 10, width: 50, height: 50 }] });
    const id = String(created.body.workload_id);
    const small = await alice.upload(id, await makeTestImage(40, 40, 'image/png'), 'small.png', 'image/png');
    expect(small.status).to.equal(422);
    expect(small.body.error?.message).to.match(
      /step 1 \(crop\): the rectangle 50x50 at \(10, 10\) does not lie inside/,
    );
    const fits = await alice.upload(id, await makeTestImage(80, 60, 'image/png'), 'fits.png', 'image/png');
    expect(fits.status).to.equal(201);
  });

  it('checks an upload as the engines read it: upright, by its EXIF orientation', async () => {
    const created = await create({ operations: [{ op: 'crop', left: 0, top: 0, width: 30, height: 70 }] });
    const id = String(created.body.workload_id);
    // stored 80 wide and 40 high, shown turned a quarter (orientation 6): 40 wide and 80 high
    const turned = await sharp({ create: { width: 80, height: 40, channels: 3, background: '#808080' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const upload = await alice.upload(id, turned, 'turned.jpg', 'image/jpeg');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
  });

  it('says why a workload waits when no live worker can run it', async () => {
    const created = await create({ operations: [{ op: 'format', type: 'avif' }] });
    const id = String(created.body.workload_id);
    expect((await alice.upload(id, await makeTestImage(20, 20, 'image/png'), 'a.png', 'image/png')).status).to.equal(
      201,
    );
    const view = (await alice.workload(id)) as unknown as { waiting_for?: string; status: string };
    expect(view.status).to.equal('scheduling');
    expect(view.waiting_for).to.equal('no live worker is connected');
  });
});
