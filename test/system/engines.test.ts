import { expect } from 'chai';
import { FILTER_NAMES } from '../../common/filters/index.js';
import {
  createEngine,
  UndecodableImageError,
  type EngineName,
  type FilterEngine,
  type ImageMime,
} from '../../worker/engines/index.js';
import { Jimp } from 'jimp';
import { JimpEngine } from '../../worker/engines/jimp-engine.js';
import {
  decodeRgba,
  highFrequencyEnergy,
  jpegComponentCount,
  makeTestImage,
  maxChannelSpread,
  sniffMime,
} from '../helpers/images.js';

const ENGINES: readonly EngineName[] = ['sharp', 'jimp'];
const MIMES: readonly ImageMime[] = ['image/png', 'image/jpeg'];
// JPEG re-encoding may leave a little chroma behind.
const GRAY_TOLERANCE: Record<ImageMime, number> = { 'image/png': 0, 'image/jpeg': 2 };

/** Resolves with the rejection reason; fails if the promise resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

describe('filter engines', function () {
  this.timeout(60_000);

  const inputs = new Map<ImageMime, Buffer>();
  before(async () => {
    for (const mime of MIMES) inputs.set(mime, await makeTestImage(320, 240, mime, 42));
  });
  function input(mime: ImageMime): Buffer {
    const buffer = inputs.get(mime);
    if (!buffer) throw new Error(`no test input for ${mime}`);
    return buffer;
  }

  it('uses colourful, detailed test inputs', async () => {
    for (const mime of MIMES) {
      const rgba = await decodeRgba(input(mime));
      expect(maxChannelSpread(rgba)).to.be.above(100);
      expect(highFrequencyEnergy(rgba)).to.be.above(20);
    }
  });

  for (const engineName of ENGINES) {
    describe(`${engineName} engine`, () => {
      let engine: FilterEngine;
      before(async () => {
        engine = await createEngine(engineName, 2);
      });
      after(async () => {
        await engine?.close();
      });

      it(`reports its name`, () => {
        expect(engine.name).to.equal(engineName);
      });

      for (const mime of MIMES) {
        for (const filter of FILTER_NAMES) {
          it(`${filter} keeps the size and format of a ${mime}`, async () => {
            const result = await engine.apply(filter, input(mime));
            expect(result.mime).to.equal(mime);
            expect(sniffMime(result.data)).to.equal(mime);
            expect([result.width, result.height]).to.deep.equal([320, 240]);
            const decoded = await decodeRgba(result.data);
            expect([decoded.width, decoded.height]).to.deep.equal([320, 240]);
          });
        }

        it(`grayscale makes every pixel of a ${mime} grey`, async () => {
          const result = await engine.apply('grayscale', input(mime));
          expect(maxChannelSpread(await decodeRgba(result.data))).to.be.at.most(GRAY_TOLERANCE[mime]);
        });

        it(`blur cuts the high-frequency energy of a ${mime} by at least 30%`, async () => {
          const before = highFrequencyEnergy(await decodeRgba(input(mime)));
          const result = await engine.apply('blur', input(mime));
          const after = highFrequencyEnergy(await decodeRgba(result.data));
          expect(after).to.be.below(before * 0.7);
        });
      }

      it('leaves the caller’s input buffer intact', async () => {
        const png = input('image/png');
        const copy = Buffer.from(png);
        await engine.apply('blur', png);
        expect(png.equals(copy)).to.equal(true);
      });

      it('runs more jobs at once than its concurrency', async () => {
        const jobs = Array.from({ length: 6 }, (_, i) =>
          engine.apply(i % 2 ? 'blur' : 'grayscale', input('image/jpeg')),
        );
        const results = await Promise.all(jobs);
        expect(results.map((r) => r.mime)).to.deep.equal(Array(6).fill('image/jpeg'));
      });

      const poison: Record<string, () => Buffer> = {
        'a truncated PNG': () => input('image/png').subarray(0, input('image/png').length / 2),
        'random bytes': () => Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919) % 256)),
        'a PNG signature followed by garbage': () =>
          Buffer.concat([input('image/png').subarray(0, 8), Buffer.alloc(500, 0x42)]),
        'an empty buffer': () => Buffer.alloc(0),
        'a truncated JPEG': () => input('image/jpeg').subarray(0, input('image/jpeg').length / 2),
        'a JPEG signature followed by garbage': () =>
          Buffer.concat([input('image/jpeg').subarray(0, 3), Buffer.alloc(500, 0x42)]),
      };
      for (const [what, make] of Object.entries(poison)) {
        it(`rejects ${what} with UndecodableImageError`, async () => {
          const err = await rejectionOf(engine.apply('blur', make()));
          expect(err).to.be.instanceOf(UndecodableImageError);
          expect((err as Error).message).to.match(/could not decode image|unsupported image format/);
        });
      }

      it('still filters after rejecting poison', async () => {
        await rejectionOf(engine.apply('blur', input('image/jpeg').subarray(0, 1000)));
        const result = await engine.apply('blur', input('image/jpeg'));
        expect([result.width, result.height]).to.deep.equal([320, 240]);
      });

      it('abandons a job whose signal aborts: rejects at once, with the reason; the next job is filtered', async () => {
        const big = await makeTestImage(1600, 1200, 'image/png', 11);
        let started = performance.now();
        await engine.apply('blur', big);
        const whole = performance.now() - started;
        const abort = new AbortController();
        started = performance.now();
        const abandoned = engine.apply('blur', big, { signal: abort.signal });
        setTimeout(() => abort.abort(new Error('the job deadline passed')), 5);
        const err = await rejectionOf(abandoned);
        const took = performance.now() - started;
        expect((err as Error).message).to.equal('the job deadline passed');
        expect(took, `abandoned after ${took} ms; the whole job takes ${whole} ms`).to.be.below(whole / 2);
        // a signal aborted before the call: nothing starts
        expect(await rejectionOf(engine.apply('blur', big, { signal: abort.signal }))).to.equal(err);
        const result = await engine.apply('blur', input('image/png'), { timeoutMs: 60_000 });
        expect([result.width, result.height]).to.deep.equal([320, 240]);
      });

      it('rejects apply() after close()', async () => {
        const closing = await createEngine(engineName, 1);
        await closing.close();
        const err = await rejectionOf(closing.apply('blur', input('image/png')));
        expect(err).to.be.instanceOf(Error).and.not.instanceOf(UndecodableImageError);
      });
    });
  }

  describe('jimp engine output', () => {
    it('writes a grayscale JPEG with one channel, as sharp does', async () => {
      const engine = await createEngine('jimp', 1);
      try {
        const result = await engine.apply('grayscale', await makeTestImage(320, 240, 'image/jpeg'));
        expect(jpegComponentCount(result.data)).to.equal(1);
        const colour = await engine.apply('blur', await makeTestImage(320, 240, 'image/jpeg'));
        expect(jpegComponentCount(colour.data)).to.equal(3);
      } finally {
        await engine.close();
      }
    });

    it("grayscale writes exactly the values of jimp's own greyscale()", async () => {
      const png = await makeTestImage(64, 48, 'image/png', 5);
      const engine = await createEngine('jimp', 1);
      try {
        const own = await engine.apply('grayscale', png);
        const reference = (await Jimp.fromBuffer(png)).greyscale();
        expect(Buffer.from((await decodeRgba(own.data)).data).equals(reference.bitmap.data)).to.equal(true);
      } finally {
        await engine.close();
      }
    });
  });

  describe('jimp engine threads', () => {
    const opened: FilterEngine[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((engine) => engine.close()));
    });

    it('keeps the event loop free while blurring a 2000x2000 image', async () => {
      const big = await makeTestImage(2000, 2000, 'image/png', 7);
      const engine = new JimpEngine(1);
      opened.push(engine);

      let last = performance.now();
      let maxGap = 0;
      let ticks = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
        ticks++;
      }, 10);
      const started = performance.now();
      try {
        const result = await engine.apply('blur', big);
        expect([result.width, result.height]).to.deep.equal([2000, 2000]);
      } finally {
        clearInterval(timer);
      }
      const elapsed = performance.now() - started;
      expect(ticks, 'the job was too quick to tell').to.be.above(10);
      // a blur on the event loop would stall it for the whole job; a shared, busy machine can delay a
      // timer by a few hundred ms on its own, so the bound is a part of the job's time, not a constant
      expect(maxGap).to.be.below(Math.max(200, elapsed / 3));
    });

    it('rejects the job of a crashed thread and replaces the thread', async () => {
      const crashing = new URL(
        'data:text/javascript,' +
          encodeURIComponent(
            "import { parentPort } from 'node:worker_threads';" +
              "parentPort.on('message', () => { throw new Error('simulated crash'); });",
          ),
      );
      const engine = new JimpEngine(1, crashing);
      opened.push(engine);
      for (let attempt = 0; attempt < 2; attempt++) {
        // The second job only settles if the dead thread was replaced.
        const err = await rejectionOf(engine.apply('blur', input('image/png')));
        expect(err).to.be.instanceOf(Error).and.not.instanceOf(UndecodableImageError);
        expect((err as Error).message).to.contain('simulated crash');
      }
    });

    it('fails instead of respawning threads whose script cannot start', async () => {
      const broken = new URL(`data:text/javascript,${encodeURIComponent("throw new Error('broken script');")}`);
      const engine = new JimpEngine(2, broken);
      opened.push(engine);
      for (let attempt = 0; attempt < 3; attempt++) {
        const err = await rejectionOf(engine.apply('blur', input('image/png')));
        expect((err as Error).message).to.contain('broken script');
      }
    });

    it('terminates the thread of an abandoned job and starts another; an abandoned queued job leaves', async () => {
      // blur never ends (the thread spins for ever), grayscale answers at once
      const spinning = new URL(
        'data:text/javascript,' +
          encodeURIComponent(
            "import { parentPort } from 'node:worker_threads';" +
              "parentPort.on('message', (request) => { if (request.chain[0].op === 'blur') for (;;); " +
              'const data = new Uint8Array(4); ' +
              'parentPort.postMessage({ ok: true, data, width: 1, height: 1 }, [data.buffer]); });',
          ),
      );
      const engine = new JimpEngine(1, spinning);
      opened.push(engine);
      const [stuck, queued] = [new AbortController(), new AbortController()];
      const stuckJob = rejectionOf(engine.apply('blur', input('image/png'), { signal: stuck.signal }));
      const queuedJob = rejectionOf(engine.apply('grayscale', input('image/png'), { signal: queued.signal }));
      const behind = engine.apply('grayscale', input('image/png'));
      queued.abort(new Error('cancelled'));
      expect(((await queuedJob) as Error).message).to.equal('cancelled');
      // the one thread spins: the job behind runs only on the thread that replaces it
      await new Promise((resolve) => setTimeout(resolve, 100));
      stuck.abort(new Error('the job deadline passed'));
      expect(((await stuckJob) as Error).message).to.equal('the job deadline passed');
      expect((await behind).width).to.equal(1);
      expect((await engine.apply('grayscale', input('image/png'))).width).to.equal(1);
    });

    it('rejects running and queued jobs on close()', async () => {
      const engine = new JimpEngine(1);
      opened.push(engine);
      const outcomes = [1, 2].map(() => rejectionOf(engine.apply('blur', input('image/png'))));
      await engine.close();
      for (const outcome of outcomes) expect(await outcome).to.be.instanceOf(Error);
    });
  });

  describe('createEngine', () => {
    it("'auto' picks sharp when it loads", async () => {
      const engine = await createEngine('auto', 1);
      try {
        expect(engine.name).to.equal('sharp');
      } finally {
        await engine.close();
      }
    });
  });
});
