// Every operation end to end on real worker processes, on each engine where the engine can: uploaded,
// scheduled to a worker that can run it, run, uploaded back and downloaded; each result checked by a
// tool that did not make it (its header read by image-size, its pixels decoded by sharp for the jimp
// engine's results and by jimp for sharp's where jimp reads the format). Then the routing: a chain only
// one engine can run goes to it, and waits, saying why, while no live worker can.
import { expect } from 'chai';
import { imageSize } from 'image-size';
import { Jimp } from 'jimp';
import sharp from 'sharp';
import type { Server } from '../../bin/server.js';
import { chainGeometry, parseChain, type Operation } from '../../common/operations/index.js';
import { TestClient } from '../helpers/api.js';
import { highFrequencyEnergy, makePhotoLikeImage, type RgbaImage } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { makeDirs, spawnWorker, startTestServer, type TestDirs } from '../helpers/system.js';

const ENGINES = ['sharp', 'jimp'] as const;
type Engine = (typeof ENGINES)[number];

interface Case {
  title: string;
  steps: unknown[];
  /** Engines that cannot write the chain's format. */
  not?: Engine[];
  /** Compared with the input's edge energy: a blur makes less of it, a sharpen more. */
  edges?: 'less' | 'more';
  grey?: boolean;
}

const CASES: Case[] = [
  { title: 'grayscale', steps: [{ op: 'grayscale' }], grey: true },
  { title: 'blur', steps: [{ op: 'blur', sigma: 3 }], edges: 'less' },
  { title: 'sharpen', steps: [{ op: 'sharpen', sigma: 1.5 }], edges: 'more' },
  { title: 'resize cover', steps: [{ op: 'resize', width: 100, height: 100 }] },
  { title: 'resize inside', steps: [{ op: 'resize', width: 150, height: 150, fit: 'inside' }] },
  { title: 'resize contain', steps: [{ op: 'resize', width: 120, height: 40, fit: 'contain' }] },
  { title: 'resize fill', steps: [{ op: 'resize', width: 90, height: 170, fit: 'fill' }] },
  { title: 'resize outside', steps: [{ op: 'resize', width: 70, height: 70, fit: 'outside' }] },
  { title: 'resize enlarge', steps: [{ op: 'resize', width: 400, enlarge: true }] },
  { title: 'thumbnail', steps: [{ op: 'thumbnail', size: 64 }] },
  { title: 'crop', steps: [{ op: 'crop', left: 10, top: 20, width: 80, height: 50 }] },
  { title: 'rotate 90', steps: [{ op: 'rotate', angle: 90 }] },
  { title: 'rotate 180', steps: [{ op: 'rotate', angle: 180 }] },
  { title: 'auto_orient, flip, flop', steps: [{ op: 'auto_orient' }, { op: 'flip' }, { op: 'flop' }] },
  { title: 'format jpeg', steps: [{ op: 'format', type: 'jpeg', quality: 60 }] },
  { title: 'format png', steps: [{ op: 'format', type: 'png' }] },
  { title: 'format webp', steps: [{ op: 'format', type: 'webp', quality: 70 }], not: ['jimp'] },
  { title: 'format avif', steps: [{ op: 'format', type: 'avif', quality: 50 }], not: ['jimp'] },
  {
    title: 'a chain: resize, grayscale, rotate, jpeg',
    steps: [
      { op: 'resize', width: 120 },
      { op: 'grayscale' },
      { op: 'rotate', angle: 270 },
      { op: 'format', type: 'jpeg' },
    ],
    grey: true,
  },
];

const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp', avif: 'image/avif' };

async function rgbaOf(data: Buffer, engine: Engine): Promise<RgbaImage> {
  // decoded by the engine that did not make it (jimp reads PNG and JPEG only)
  const format = imageSize(data).type;
  if (engine === 'sharp' && (format === 'png' || format === 'jpg')) {
    const image = await Jimp.read(data);
    return { data: new Uint8Array(image.bitmap.data), width: image.bitmap.width, height: image.bitmap.height };
  }
  const { data: pixels, info } = await sharp(data).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(pixels), width: info.width, height: info.height };
}

describe('operations end to end on both engines', function () {
  this.timeout(180_000);
  let dirs: TestDirs;
  let server: Server;
  let alice: TestClient;
  let photo: Buffer;
  let controllerPort: number;
  const workers = new Map<Engine, Spawned>();

  before(async () => {
    dirs = await makeDirs();
    const started = await startTestServer(dirs);
    server = started.server;
    controllerPort = started.config.controller.port;
    alice = await TestClient.login(started.url, 'alice', 'alice-pw');
    photo = await makePhotoLikeImage(200, 150, 11);
    for (const engine of ENGINES)
      workers.set(engine, spawnWorker({ controllerPort, name: `${engine}-worker`, engine, tags: [engine], slots: 2 }));
    await waitFor('both workers', async () => server.controller.workers.alive().length === 2, 30_000);
  });

  after(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  async function run(steps: unknown[], engine: Engine): Promise<{ data: Buffer; type: string | null }> {
    const workload = await alice.createWorkload({ operations: steps, tags: [engine] });
    const upload = await alice.upload(workload.workload_id, photo, 'photo.jpg', 'image/jpeg');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
    const done = await alice.waitForCompletion(workload.workload_id, 60_000);
    expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
    const result = await alice.download(done.filtered_images[0]!);
    expect(result.status).to.equal(200);
    return result;
  }

  for (const engine of ENGINES) {
    for (const { title, steps, not, edges, grey } of CASES) {
      if (not?.includes(engine)) continue;
      it(`${engine}: ${title}`, async () => {
        const parsed = parseChain(steps);
        if (!parsed.ok) expect.fail(parsed.error);
        const chain: Operation[] = parsed.chain;
        const geometry = chainGeometry(chain, { width: 200, height: 150 });
        if (!geometry.ok) expect.fail(geometry.error);
        const { data, type } = await run(steps, engine);
        const header = imageSize(data);
        const last = chain.at(-1);
        // without a format step the result keeps the input's: the photo is a JPEG
        const expectedFormat = last?.op === 'format' ? (last.type === 'jpeg' ? 'jpg' : last.type) : 'jpg';
        expect(header.type, 'format').to.equal(expectedFormat);
        expect(type, 'content type').to.equal(MIME[expectedFormat]);
        expect({ width: header.width, height: header.height }, 'dimensions').to.deep.equal(geometry.output);
        const pixels = await rgbaOf(data, engine);
        expect({ width: pixels.width, height: pixels.height }, 'decoded dimensions').to.deep.equal(geometry.output);
        if (grey) {
          let spread = 0;
          for (let index = 0; index < pixels.data.length; index += 4)
            spread = Math.max(
              spread,
              Math.abs(pixels.data[index]! - pixels.data[index + 1]!),
              Math.abs(pixels.data[index + 1]! - pixels.data[index + 2]!),
            );
          expect(spread, 'R = G = B (within JPEG rounding)').to.be.at.most(grey && expectedFormat === 'jpg' ? 3 : 0);
        }
        if (edges) {
          const input = await rgbaOf(photo, 'sharp');
          const before = highFrequencyEnergy(input);
          const after = highFrequencyEnergy(pixels);
          if (edges === 'less') expect(after, 'edge energy falls').to.be.lessThan(before * 0.8);
          else expect(after, 'edge energy rises').to.be.greaterThan(before * 1.05);
        }
      });
    }
  }

  it('routes by what a worker can do: webp goes to sharp; with only jimp alive it waits and says why', async () => {
    const steps = [
      { op: 'resize', width: 64 },
      { op: 'format', type: 'webp' },
    ];
    // no tag: either worker may be chosen by load, but only sharp can encode webp
    const workload = await alice.createWorkload({ operations: steps });
    for (let index = 0; index < 6; index++)
      expect((await alice.upload(workload.workload_id, photo, `${index}.jpg`, 'image/jpeg')).status).to.equal(201);
    const done = await alice.waitForCompletion(workload.workload_id, 60_000);
    expect(done.failed_jobs).to.equal(0);
    const sharpId = server.controller.workers.byName('sharp-worker')!.record.id;
    expect(server.controller.activity.view(sharpId)?.jobs_done ?? 0).to.be.at.least(6);

    await workers.get('sharp')!.kill('SIGTERM');
    await waitFor('the sharp worker gone', async () => server.controller.workers.alive().length === 1, 30_000);
    const waiting = await alice.createWorkload({ operations: steps });
    expect((await alice.upload(waiting.workload_id, photo, 'w.jpg', 'image/jpeg')).status).to.equal(201);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const view = (await alice.workload(waiting.workload_id)) as unknown as { status: string; waiting_for?: string };
    expect(view.status, 'still queued, not failed').to.equal('scheduling');
    expect(view.waiting_for).to.equal('no live worker can encode webp');

    workers.set('sharp', spawnWorker({ controllerPort, name: 'sharp-again', engine: 'sharp', slots: 2 }));
    const finished = await alice.waitForCompletion(waiting.workload_id, 60_000);
    expect(finished.failed_jobs).to.equal(0);
    const after = (await alice.workload(waiting.workload_id)) as unknown as { waiting_for?: string };
    expect(after.waiting_for).to.equal(undefined);
  });
});
