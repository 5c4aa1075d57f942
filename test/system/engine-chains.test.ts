// Chains of operations on both engines (jimp in its worker threads): the same sizes, pixels within a
// measured tolerance of each other, course filters byte for byte as before chains; the worker running an
// assignment's chain, telling the controller what its engine can do, and uploading a chain's result to
// the real API.
import { expect } from 'chai';
import { Jimp } from 'jimp';
import sharp from 'sharp';
import { boxBlurRgba } from '../../common/filters/box-blur.js';
import { FILTER_NAMES, type FilterName } from '../../common/filters/index.js';
import { lumaRgba } from '../../common/filters/luma.js';
import { createLogger } from '../../common/log.js';
import { chainGeometry, OPERATION_SPECS, type Operation } from '../../common/operations/index.js';
import { bindPublisher, connectRpc, method, serveRpc } from '../../common/bus/index.js';
import {
  ANNOUNCE,
  assignParamsSchema,
  CONTROLLER_METHODS,
  heartbeatParamsSchema,
  registerParamsSchema,
  registerResultSchema,
  WORKER_METHODS,
  type AcceptedResult,
  type Assignment,
  type RegisterParams,
} from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import { ApiClient, DEFAULT_HTTP_TIMEOUTS } from '../../worker/api-client.js';
import {
  ChainError,
  createEngine,
  UndecodableImageError,
  type FilterEngine,
  type FilterResult,
} from '../../worker/engines/index.js';
import { JimpEngine } from '../../worker/engines/jimp-engine.js';
import { decodeJpeg, encodeJpeg } from '../../worker/engines/jpeg-codec.js';
import { runJob } from '../../worker/job-runner.js';
import { TestClient } from '../helpers/api.js';
import {
  chain,
  COURSE_ORIGINALS,
  declared,
  describeChain,
  expectCourseBytes,
  MIXED,
  ONE_OF_EACH,
  rejectionOf,
} from '../helpers/chains.js';
import { highFrequencyEnergy, makePhotoLikeImage, maxChannelSpread, sniffMime } from '../helpers/images.js';
import { freePorts } from '../helpers/ports.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { difference, JPEG_ENCODERS, sharpRgba, TOLERANCE, worstMean } from '../helpers/sharp-reference.js';
import { makeDirs, spawnWorker, startTestServer, TEST_SECRET, type TestDirs } from '../helpers/system.js';

/** The jimp engine's code for a course filter before chains, as it was, in this thread. */
async function jimpCourseBeforeChains(filter: FilterName, input: Buffer): Promise<Buffer> {
  const apply = (bitmap: { data: Uint8Array; width: number; height: number }): void => {
    if (filter === 'grayscale') lumaRgba(bitmap.data);
    else boxBlurRgba(bitmap.data, bitmap.width, bitmap.height, 5, 2);
  };
  if (sniffMime(input) === 'image/jpeg') {
    const bitmap = await decodeJpeg(input);
    apply(bitmap);
    return encodeJpeg(bitmap, { quality: 90, grey: filter === 'grayscale' });
  }
  const { bitmap } = await Jimp.fromBuffer(input);
  apply(bitmap);
  return new Jimp(bitmap).getBuffer('image/png');
}

/** The pixels two results show, compared (each decoded by sharp, which wrote at most one of them). */
async function compared(a: FilterResult, b: FilterResult) {
  return difference(await sharpRgba(a.data), await sharpRgba(b.data));
}

function allowed(steps: readonly Operation[], jpegOut: boolean): number {
  return Math.max(...steps.map((step) => TOLERANCE[step.op])) + (jpegOut ? JPEG_ENCODERS : 0);
}

describe('engine chains', function () {
  this.timeout(120_000);
  const log = createLogger('test', 'silent');
  let sharpEngine: FilterEngine;
  let jimpEngine: FilterEngine;
  const inputs: Record<'image/png' | 'image/jpeg', Buffer> = {
    'image/png': Buffer.alloc(0),
    'image/jpeg': Buffer.alloc(0),
  };

  before(async () => {
    sharpEngine = await createEngine('sharp', 2);
    jimpEngine = await createEngine('jimp', 2);
    inputs['image/jpeg'] = await makePhotoLikeImage(320, 240, 3);
    // the same pixels, lossless: what the engines do, without a JPEG decoder in between
    inputs['image/png'] = await sharp(inputs['image/jpeg']).png().toBuffer();
  });
  after(async () => {
    await sharpEngine?.close();
    await jimpEngine?.close();
  });

  it('jimp runs every operation and writes PNG and JPEG; a WebP or AVIF chain is refused before any work', async () => {
    expect(jimpEngine.capabilities.operations).to.deep.equal(OPERATION_SPECS.map((spec) => spec.name));
    expect(jimpEngine.capabilities.formats).to.deep.equal(['png', 'jpeg']);
    for (const type of ['webp', 'avif']) {
      const err = await rejectionOf(jimpEngine.run(chain([{ op: 'format', type }]), inputs['image/png']));
      expect(err).to.be.instanceOf(ChainError);
      expect((err as ChainError).message).to.equal(`this worker's engine (jimp) cannot encode ${type}`);
      expect((err as ChainError).otherEngineMayRun).to.equal(true);
    }
  });

  describe('course filters on jimp, byte for byte as before chains', () => {
    for (const [what, make] of Object.entries(COURSE_ORIGINALS)) {
      for (const filter of FILTER_NAMES) {
        it(`${filter} of ${what}`, async () => {
          const input = await make();
          await expectCourseBytes(jimpEngine, filter, input, await jimpCourseBeforeChains(filter, input));
        });
      }
    }
  });

  for (const mime of ['image/png', 'image/jpeg'] as const) {
    for (const steps of ONE_OF_EACH) {
      const last = steps.at(-1)!;
      const format = last.op === 'format' ? last.type : mime === 'image/png' ? 'png' : 'jpeg';
      if (format === 'webp' || format === 'avif') continue;
      it(`${describeChain(steps)} on a ${mime}: jimp gives sharp's size, within tolerance of its pixels`, async () => {
        const ours = await jimpEngine.run(steps, inputs[mime]);
        const geometry = chainGeometry(steps, { width: 320, height: 240 });
        if (!geometry.ok) throw new Error(geometry.error);
        const size = [geometry.output.width, geometry.output.height];
        expect([ours.width, ours.height]).to.deep.equal(size);
        expect(ours.mime).to.equal(`image/${format}`);
        // read back by sharp and image-size, which did not write it
        const header = declared(ours.data);
        expect(header.format).to.equal(format);
        expect([header.width, header.height]).to.deep.equal(size);
        const grey = steps.some((step) => step.op === 'grayscale');
        // jimp writes a grey JPEG with one channel, and every PNG as RGBA, as before chains
        expect(header.channels).to.equal(format === 'png' ? 4 : grey ? 1 : 3);
        const decoded = await sharpRgba(ours.data);
        expect([decoded.width, decoded.height]).to.deep.equal(size);
        if (grey) expect(maxChannelSpread(decoded)).to.equal(0);
        const theirs = await sharpEngine.run(steps, inputs[mime]);
        expect([theirs.width, theirs.height]).to.deep.equal(size);
        const d = await compared(ours, theirs);
        const detail = `mean ${d.mean.map((m) => m.toFixed(2)).join(' ')}, max ${d.max}`;
        if (grey) expect(worstMean(d), detail).to.be.within(5, 20);
        else expect(worstMean(d), detail).to.be.at.most(allowed(steps, format === 'jpeg'));
      });
    }
  }

  for (const steps of MIXED) {
    const names = steps.map((step) => step.op).join(' > ');
    it(`the chain ${names}: the same size on both engines, pixels within tolerance`, async () => {
      for (const mime of ['image/png', 'image/jpeg'] as const) {
        const [ours, theirs] = [await jimpEngine.run(steps, inputs[mime]), await sharpEngine.run(steps, inputs[mime])];
        expect([ours.width, ours.height, ours.mime]).to.deep.equal([theirs.width, theirs.height, theirs.mime]);
        const d = await compared(ours, theirs);
        expect(worstMean(d), `${mime}: mean ${d.mean.map((m) => m.toFixed(2)).join(' ')}`).to.be.at.most(
          allowed(steps, ours.mime === 'image/jpeg'),
        );
      }
    });
  }

  it('both engines read an image as its EXIF orientation shows it, JPEG and PNG alike', async () => {
    const stored = await makePhotoLikeImage(240, 160, 6);
    const steps = chain([
      { op: 'crop', left: 10, top: 150, width: 100, height: 60 },
      { op: 'rotate', angle: 90 },
    ]);
    for (const orientation of [3, 5, 6, 8]) {
      for (const tagged of [
        await sharp(stored).withMetadata({ orientation }).jpeg({ quality: 95 }).toBuffer(),
        await sharp(stored).withMetadata({ orientation }).png().toBuffer(),
      ]) {
        const what = `orientation ${orientation}, ${sniffMime(tagged)}`;
        if (orientation === 3) {
          // not turned a quarter: the crop does not fit the 240x160 frame
          expect(await rejectionOf(jimpEngine.run(steps, tagged)), what).to.be.instanceOf(ChainError);
          continue;
        }
        const [ours, theirs] = [await jimpEngine.run(steps, tagged), await sharpEngine.run(steps, tagged)];
        expect([ours.width, ours.height], what).to.deep.equal([60, 100]);
        expect([theirs.width, theirs.height], what).to.deep.equal([60, 100]);
        const d = await compared(ours, theirs);
        expect(worstMean(d), what).to.be.at.most(JPEG_ENCODERS);
      }
      // a course filter too: the jimp engine no longer leaves a turned photo lying on its side
      const jpeg = await sharp(stored).withMetadata({ orientation }).jpeg({ quality: 95 }).toBuffer();
      const grey = await jimpEngine.apply('grayscale', jpeg);
      const sharpGrey = await sharpEngine.apply('grayscale', jpeg);
      expect([grey.width, grey.height]).to.deep.equal([sharpGrey.width, sharpGrey.height]);
    }
  });

  it('lays what is transparent on black when writing a JPEG, on both engines', async () => {
    const { data, info } = await sharp(inputs['image/png']).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let i = 3; i < data.length; i += 4) data[i] = Math.round((((i >> 2) % info.width) / info.width) * 255);
    const faded = await sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } })
      .png()
      .toBuffer();
    const steps = chain([{ op: 'format', type: 'jpeg', quality: 90 }]);
    const [ours, theirs] = [await jimpEngine.run(steps, faded), await sharpEngine.run(steps, faded)];
    const d = await compared(ours, theirs);
    expect(worstMean(d), `mean ${d.mean.map((m) => m.toFixed(2)).join(' ')}`).to.be.at.most(JPEG_ENCODERS);
    const left = (await sharpRgba(ours.data)).data.subarray(0, 4);
    expect(Math.max(left[0]!, left[1]!, left[2]!), 'the transparent edge is black').to.be.at.most(8);
  });

  it('jimp: blur lowers the edge energy, sharpen raises it', async () => {
    const input = inputs['image/png'];
    const energy = async (steps: unknown[]): Promise<number> =>
      highFrequencyEnergy(await sharpRgba((await jimpEngine.run(chain(steps), input)).data));
    const original = highFrequencyEnergy(await sharpRgba(input));
    expect(await energy([{ op: 'blur', sigma: 1.5 }])).to.be.below(original * 0.8);
    expect(await energy([{ op: 'sharpen', sigma: 1 }])).to.be.above(original * 1.1);
  });

  it('jimp refuses a crop outside the image without sending it to a thread, naming the step', async () => {
    // a thread that never answers: a refusal can only come from before it
    const silent = new URL(`data:text/javascript,${encodeURIComponent("import 'node:worker_threads';")}`);
    const engine = new JimpEngine(1, silent);
    try {
      const steps = chain([
        { op: 'resize', width: 100 },
        { op: 'crop', left: 50, top: 0, width: 60, height: 10 },
      ]);
      const err = await rejectionOf(engine.run(steps, inputs['image/png']));
      expect(err).to.be.instanceOf(ChainError);
      expect((err as Error).message).to.equal(
        'step 2 (crop): the rectangle 60x10 at (50, 0) does not lie inside the 100x75 image',
      );
      const enlarge = chain([{ op: 'resize', width: 4000, enlarge: true }]);
      const over = await rejectionOf(engine.run(enlarge, inputs['image/png'], { maxPixels: 1_000_000 }));
      expect((over as Error).message).to.equal(
        'step 1 (resize) makes a 4000x3000 image, more than the 1000000 pixels allowed',
      );
      const big = await rejectionOf(engine.run(chain([{ op: 'thumbnail' }]), inputs['image/png'], { maxPixels: 1000 }));
      expect(big).to.be.instanceOf(UndecodableImageError);
      expect((big as Error).message).to.match(/over the limit of 1000 \(--max-pixels\)/);
    } finally {
      await engine.close();
    }
  });

  it("jimp's reused buffers: a thread's results do not depend on the jobs it ran before", async () => {
    const engine = new JimpEngine(1);
    try {
      const jobs: [Operation[], Buffer][] = [
        [
          chain([
            { op: 'resize', width: 900, enlarge: true },
            { op: 'rotate', angle: 90 },
          ]),
          inputs['image/jpeg'],
        ],
        [
          chain([
            { op: 'rotate', angle: 270 },
            { op: 'resize', width: 100, height: 100, fit: 'contain' },
          ]),
          inputs['image/jpeg'],
        ],
        [
          chain([
            { op: 'thumbnail', size: 50 },
            { op: 'resize', width: 300, enlarge: true },
          ]),
          inputs['image/png'],
        ],
        [
          chain([
            { op: 'crop', left: 3, top: 5, width: 33, height: 17 },
            { op: 'rotate', angle: 90 },
          ]),
          inputs['image/png'],
        ],
      ];
      const inTurn: Buffer[] = [];
      for (const [steps, input] of jobs) inTurn.push((await engine.run(steps, input)).data);
      for (const [index, [steps, input]] of jobs.entries()) {
        const fresh = new JimpEngine(1);
        try {
          expect((await fresh.run(steps, input)).data.equals(inTurn[index]!), describeChain(steps)).to.equal(true);
        } finally {
          await fresh.close();
        }
      }
    } finally {
      await engine.close();
    }
  });

  describe("the worker runs the assignment's chain", () => {
    function assignment(operations?: unknown[]): Assignment {
      return {
        token: 't',
        job_id: 'job-1',
        lease_id: 'lease-1',
        image_id: 'image-1',
        workload_id: 'w',
        filter: 'grayscale',
        ...(operations ? { operations: chain(operations) } : {}),
      };
    }

    /** An API in this process: serves one original, keeps what is uploaded. */
    function fakeApi(original: Buffer) {
      const seen = { downloads: 0, uploads: [] as FilterResult[] };
      const api = {
        download: async () => {
          seen.downloads += 1;
          return original;
        },
        uploadFiltered: async (_upload: unknown, result: FilterResult) => {
          seen.uploads.push(result);
          return 'result-1';
        },
      } as unknown as ApiClient;
      return { api, seen };
    }

    it('runs the chain, and uploads its result in its format', async () => {
      const { api, seen } = fakeApi(inputs['image/jpeg']);
      const steps = [
        { op: 'resize', width: 160 },
        { op: 'format', type: 'webp', quality: 60 },
      ];
      const outcome = await runJob(assignment(steps), api, sharpEngine, new AbortController().signal, log);
      expect(outcome).to.deep.equal({ kind: 'done', imageId: 'result-1' });
      expect(seen.uploads[0]?.mime).to.equal('image/webp');
      expect(declared(seen.uploads[0]!.data)).to.include({ format: 'webp', width: 160, height: 120 });
    });

    it('runs the course filter when the assignment has no chain', async () => {
      const { api, seen } = fakeApi(inputs['image/jpeg']);
      for (const engine of [sharpEngine, jimpEngine]) {
        await runJob(assignment(), api, engine, new AbortController().signal, log);
        const expected = await engine.apply('grayscale', inputs['image/jpeg']);
        expect(seen.uploads.at(-1)!.data.equals(expected.data), engine.name).to.equal(true);
      }
    });

    it('fails a chain its engine cannot run as retryable (another may), before downloading', async () => {
      const { api, seen } = fakeApi(inputs['image/jpeg']);
      const steps = [{ op: 'format', type: 'avif' }];
      const outcome = await runJob(assignment(steps), api, jimpEngine, new AbortController().signal, log);
      expect(outcome).to.deep.equal({
        kind: 'failed',
        error: "this worker's engine (jimp) cannot encode avif",
        retryable: true,
      });
      expect(seen.downloads).to.equal(0);
    });

    it('fails a chain that does not fit the image for good, naming the step', async () => {
      const { api } = fakeApi(inputs['image/jpeg']);
      const steps = [
        { op: 'rotate', angle: 90 },
        { op: 'crop', left: 0, top: 0, width: 300, height: 10 },
      ];
      for (const engine of [sharpEngine, jimpEngine]) {
        const outcome = await runJob(assignment(steps), api, engine, new AbortController().signal, log);
        expect(outcome, engine.name).to.deep.equal({
          kind: 'failed',
          error: 'step 2 (crop): the rectangle 300x10 at (0, 0) does not lie inside the 240x320 image',
          retryable: false,
        });
      }
    });
  });

  describe('a worker tells the controller what its engine can do', () => {
    afterEach(async () => {
      await killAll();
    });

    for (const engine of ['sharp', 'jimp'] as const) {
      it(`${engine}: its operations and output formats, at registration`, async () => {
        // a controller played by the test: it announces itself and keeps what a worker registers with
        const port = await freePorts(3);
        const registered: RegisterParams[] = [];
        const publisher = bindPublisher(`tcp://127.0.0.1:${port}`);
        const controller = serveRpc(
          `tcp://127.0.0.1:${port + 1}`,
          {
            [CONTROLLER_METHODS.register]: method(registerParamsSchema, (params) => {
              registered.push(params);
              return {
                worker_id: 'w-1',
                token: 'token-1',
                api_url: 'http://127.0.0.1:9',
                api_port: 9,
                heartbeat_ms: 60_000,
                lease_ms: 120_000,
              };
            }),
            [CONTROLLER_METHODS.heartbeat]: method(heartbeatParamsSchema, () => ({ known: true, cancel: [] })),
            [CONTROLLER_METHODS.goodbye]: method(heartbeatParamsSchema.pick({ token: true }), () => ({
              accepted: true,
            })),
          },
          () => undefined,
        );
        const announcer = setInterval(
          () =>
            publisher.publish(ANNOUNCE, {
              system_name: 'stand-in',
              register_port: port + 1,
              time: new Date().toISOString(),
            }),
          100,
        );
        try {
          spawnWorker({ controllerPort: port, name: `caps-${engine}`, engine });
          await waitFor('the worker to register', async () => registered.length > 0, 30_000);
          const expected = await createEngine(engine, 1);
          try {
            expect(registered[0]!.engine).to.equal(engine);
            expect(registered[0]!.operations).to.deep.equal(expected.capabilities.operations);
            expect(registered[0]!.formats).to.deep.equal(expected.capabilities.formats);
            expect(registered[0]!.filters).to.deep.equal(FILTER_NAMES);
          } finally {
            await expected.close();
          }
        } finally {
          clearInterval(announcer);
          publisher.close();
          controller.close();
        }
      });
    }
  });

  describe("through the real API: a chain's result uploaded and downloaded", () => {
    let dirs: TestDirs;
    let server: Awaited<ReturnType<typeof startTestServer>>;

    before(async () => {
      dirs = await makeDirs();
      server = await startTestServer(dirs, { leaseMs: 20_000 });
    });
    after(async () => {
      await server?.server.close();
      await dirs?.remove();
    });

    for (const engineName of ['sharp', 'jimp'] as const) {
      it(`${engineName}: a PNG original resized, turned and written as JPEG`, async () => {
        // the worker's side played by the test: it registers, takes the scheduler's assignment, and runs the
        // job with the worker's own code, the chain added (the scheduler here sends none)
        const port = await freePorts();
        const assigned: Assignment[] = [];
        const stand = serveRpc(
          `tcp://127.0.0.1:${port}`,
          {
            [WORKER_METHODS.assign]: method(assignParamsSchema, (params): AcceptedResult => {
              assigned.push(params);
              return { accepted: true };
            }),
          },
          () => undefined,
        );
        const bus = connectRpc(`tcp://127.0.0.1:${rpcPortOf(server.server.controller.config)}`);
        try {
          const tag = `chains-${engineName}`;
          const registration = await bus.call(
            CONTROLLER_METHODS.register,
            {
              secret: TEST_SECRET,
              name: tag,
              instance_id: `${tag}-1`,
              tags: [tag],
              rpc_address: `tcp://127.0.0.1:${port}`,
              slots: 1,
              engine: engineName,
              filters: [...FILTER_NAMES],
              operations: [...(engineName === 'sharp' ? sharpEngine : jimpEngine).capabilities.operations],
              formats: [...(engineName === 'sharp' ? sharpEngine : jimpEngine).capabilities.formats],
              resources: { cpu_load: 0, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } },
              running: [],
            },
            registerResultSchema,
          );
          const alice = await TestClient.login(server.url, 'alice', 'alice-pw');
          const workload = await alice.createWorkload({ tags: [tag] });
          const upload = await alice.upload(workload.workload_id, inputs['image/png'], 'a.png', 'image/png');
          expect(upload.status).to.equal(201);
          await waitFor('the assignment', async () => assigned.length > 0, 20_000);
          const steps = [
            { op: 'resize', width: 200 },
            { op: 'rotate', angle: 90 },
            { op: 'format', type: 'jpeg', quality: 80 },
          ];
          const job: Assignment = { ...assigned[0]!, operations: chain(steps) };
          const api = new ApiClient(server.url, () => registration.token, DEFAULT_HTTP_TIMEOUTS);
          const engine = engineName === 'sharp' ? sharpEngine : jimpEngine;
          const outcome = await runJob(job, api, engine, new AbortController().signal, log);
          if (outcome.kind !== 'done') throw new Error(`the job did not finish: ${JSON.stringify(outcome)}`);
          const done = await alice.waitForCompletion(workload.workload_id, 20_000);
          expect(done.done_jobs).to.equal(1);
          const result = await alice.download(outcome.imageId);
          expect(result.status).to.equal(200);
          expect(declared(result.data)).to.deep.equal({ format: 'jpeg', width: 150, height: 200, channels: 3 });
          const direct = await engine.run(job.operations!, inputs['image/png']);
          expect(result.data.equals(direct.data), 'the bytes the engine wrote').to.equal(true);
        } finally {
          bus.close();
          stand.close();
        }
      });
    }
  });
});
