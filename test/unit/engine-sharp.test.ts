// The sharp engine runs chains: course filters byte for byte as before chains, every operation and
// output format, sizes as the contract gives them, and a chain that cannot apply refused before decoding.
import { availableParallelism } from 'node:os';
import { expect } from 'chai';
import sharp from 'sharp';
import { FILTER_NAMES, type FilterName } from '../../common/filters/index.js';
import { chainGeometry, OPERATION_SPECS, OUTPUT_FORMATS } from '../../common/operations/index.js';
import { createSharpEngine, defaultThreadsPerJob } from '../../worker/engines/sharp-engine.js';
import { ChainError, UndecodableImageError, type FilterEngine } from '../../worker/engines/index.js';
import {
  chain,
  COURSE_ORIGINALS,
  declared,
  describeChain,
  expectCourseBytes,
  ONE_OF_EACH,
  rejectionOf,
  untested,
} from '../helpers/chains.js';
import {
  decodeRgba,
  highFrequencyEnergy,
  makePhotoLikeImage,
  makeTestImage,
  maxChannelSpread,
  poisonPng,
  sniffMime,
} from '../helpers/images.js';

/** The sharp engine's code for a course filter before chains, as it was (blur: sigma of two radius-5 boxes). */
async function courseBeforeChains(filter: FilterName, input: Buffer): Promise<Buffer> {
  const pipeline = sharp(input, { failOn: 'error', limitInputPixels: false, autoOrient: true });
  const filtered =
    filter === 'grayscale' ? pipeline.grayscale() : pipeline.blur(Math.sqrt((2 * ((2 * 5 + 1) ** 2 - 1)) / 12));
  const encoder = sniffMime(input) === 'image/png' ? filtered.png() : filtered.jpeg({ quality: 90 });
  return encoder.toBuffer();
}

describe('the sharp engine: threads per job', () => {
  it('gives libvips the threads asked for per job, else the cores shared among the jobs run at once', async () => {
    const before = sharp.concurrency();
    try {
      await (await createSharpEngine(1, 3)).close();
      expect(sharp.concurrency()).to.equal(3);
      await (await createSharpEngine(2)).close();
      expect(sharp.concurrency()).to.equal(defaultThreadsPerJob(2));
      expect(defaultThreadsPerJob(1)).to.equal(availableParallelism());
    } finally {
      sharp.concurrency(before);
    }
  });
});

describe('sharp engine: chains', function () {
  this.timeout(60_000);
  let engine: FilterEngine;
  const inputs: Record<string, Buffer> = {};

  before(async () => {
    engine = await createSharpEngine(2);
    inputs['image/png'] = await makeTestImage(320, 240, 'image/png', 42);
    inputs['image/jpeg'] = await makePhotoLikeImage(320, 240, 3);
  });
  after(async () => {
    await engine?.close();
  });

  it('can run every operation and write every format', () => {
    expect(engine.capabilities.operations).to.deep.equal(OPERATION_SPECS.map((spec) => spec.name));
    expect(engine.capabilities.formats).to.deep.equal(OUTPUT_FORMATS);
    expect(untested(), 'every operation has a chain in these tests').to.deep.equal([]);
  });

  describe('course filters, byte for byte as before chains', () => {
    const cases: Record<string, () => Promise<Buffer>> = {
      ...COURSE_ORIGINALS,
      'a JPEG turned by its EXIF orientation': async () =>
        sharp(await makePhotoLikeImage(200, 100, 4))
          .withMetadata({ orientation: 6 })
          .jpeg()
          .toBuffer(),
    };
    for (const [what, make] of Object.entries(cases)) {
      for (const filter of FILTER_NAMES) {
        it(`${filter} of ${what}`, async () => {
          const input = await make();
          await expectCourseBytes(engine, filter, input, await courseBeforeChains(filter, input));
          expect((await engine.apply(filter, input)).mime).to.equal(sniffMime(input));
        });
      }
    }
  });

  for (const mime of ['image/png', 'image/jpeg'] as const) {
    for (const steps of ONE_OF_EACH) {
      it(`${describeChain(steps)} on a ${mime}: the contract's size and format, read back by others`, async () => {
        const result = await engine.run(steps, inputs[mime]!);
        const geometry = chainGeometry(steps, { width: 320, height: 240 });
        if (!geometry.ok) throw new Error(geometry.error);
        const size = [geometry.output.width, geometry.output.height];
        expect([result.width, result.height]).to.deep.equal(size);
        const format = steps.at(-1)?.op === 'format' ? steps.at(-1) : undefined;
        const expected = format?.op === 'format' ? format.type : mime === 'image/png' ? 'png' : 'jpeg';
        expect(result.mime).to.equal(`image/${expected}`);
        // the header, read by image-size; the pixels, decoded by jimp (neither wrote them)
        const header = declared(result.data);
        expect(header.format).to.equal(expected);
        expect([header.width, header.height]).to.deep.equal(size);
        // sharp writes its grey as R = G = B: three channels in a JPEG, as it did before chains
        if (header.format === 'jpeg') expect(header.channels).to.equal(3);
        if (header.format === 'png') expect(header.channels).to.equal(mime === 'image/png' ? 4 : 3);
        if (header.format === 'png' || header.format === 'jpeg') {
          const decoded = await decodeRgba(result.data);
          expect([decoded.width, decoded.height]).to.deep.equal(size);
          if (steps.some((step) => step.op === 'grayscale'))
            expect(maxChannelSpread(decoded)).to.be.at.most(header.format === 'jpeg' ? 2 : 0);
          else expect(maxChannelSpread(decoded)).to.be.above(50);
        }
      });
    }
  }

  it('keeps alpha through every step, grey ones included', async () => {
    const holed = await sharp(inputs['image/jpeg']!)
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true })
      .then(({ data, info }) => {
        for (let i = 3; i < data.length; i += 4) data[i] = (i >> 2) % info.width < 160 ? 0 : 255;
        return sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } })
          .png()
          .toBuffer();
      });
    const greyAlpha = await sharp(holed).toColourspace('b-w').png().toBuffer();
    expect(declared(greyAlpha).channels, 'a grey and alpha PNG').to.equal(2);
    for (const input of [holed, greyAlpha])
      for (const steps of [
        [{ op: 'grayscale' }, { op: 'resize', width: 160 }],
        [{ op: 'flop' }, { op: 'grayscale' }, { op: 'flip' }],
        [
          { op: 'resize', width: 160 },
          { op: 'rotate', angle: 180 },
        ],
      ]) {
        const result = await engine.run(chain(steps), input);
        const decoded = await decodeRgba(result.data);
        // the left half transparent, the right half opaque, whatever the steps did to them
        const alphaAt = (x: number, y: number): number => decoded.data[(y * decoded.width + x) * 4 + 3]!;
        const flopped = steps.some(
          (step) => (step as { op: string }).op === 'flop' || (step as { angle?: number }).angle === 180,
        );
        const [clear, solid] = flopped ? [decoded.width - 5, 5] : [5, decoded.width - 5];
        expect([alphaAt(clear, 10), alphaAt(solid, 10)], JSON.stringify(steps)).to.deep.equal([0, 255]);
      }
  });

  it('writes lossy formats at the quality asked for', async () => {
    for (const type of ['jpeg', 'webp', 'avif'] as const) {
      const low = await engine.run(chain([{ op: 'format', type, quality: 20 }]), inputs['image/jpeg']!);
      const high = await engine.run(chain([{ op: 'format', type, quality: 95 }]), inputs['image/jpeg']!);
      expect(low.data.length, type).to.be.below(high.data.length);
    }
  });

  it('blur lowers the edge energy, sharpen raises it', async () => {
    const input = inputs['image/jpeg']!;
    const energy = async (steps: unknown[]): Promise<number> =>
      highFrequencyEnergy(await decodeRgba((await engine.run(chain(steps), input)).data));
    const original = highFrequencyEnergy(await decodeRgba(input));
    expect(await energy([{ op: 'blur', sigma: 1.5 }])).to.be.below(original * 0.8);
    expect(await energy([{ op: 'sharpen', sigma: 1 }])).to.be.above(original * 1.1);
  });

  it('runs a chain in its order: a turn or an enlargement before a crop makes room for it', async () => {
    const input = inputs['image/png']!;
    const pairs: [unknown, unknown, [number, number]][] = [
      [{ op: 'rotate', angle: 90 }, { op: 'crop', left: 0, top: 0, width: 100, height: 300 }, [100, 300]],
      [
        { op: 'resize', width: 640, enlarge: true },
        { op: 'crop', left: 400, top: 300, width: 100, height: 100 },
        [100, 100],
      ],
    ];
    for (const [first, crop, size] of pairs) {
      const result = await engine.run(chain([first, crop]), input);
      expect([result.width, result.height]).to.deep.equal(size);
      const reversed = await rejectionOf(engine.run(chain([crop, first]), input));
      expect(reversed).to.be.instanceOf(ChainError);
      expect((reversed as Error).message).to.match(/^step 1 \(crop\): the rectangle/);
    }
  });

  it('refuses a crop outside the image before decoding it, naming the step', async () => {
    const steps = chain([{ op: 'grayscale' }, { op: 'crop', left: 300, top: 0, width: 50, height: 10 }]);
    const err = await rejectionOf(engine.run(steps, inputs['image/png']!));
    expect(err).to.be.instanceOf(ChainError);
    expect((err as ChainError).message).to.equal(
      'step 2 (crop): the rectangle 50x10 at (300, 0) does not lie inside the 320x240 image',
    );
    expect((err as ChainError).otherEngineMayRun).to.equal(false);
    // a valid header over garbage: the refusal comes from the header alone, not from a decoder
    const poison = await poisonPng(64, 48);
    expect(
      await rejectionOf(engine.run(chain([{ op: 'crop', left: 60, top: 0, width: 10, height: 10 }]), poison)),
    ).to.be.instanceOf(ChainError);
    expect(
      await rejectionOf(engine.run(chain([{ op: 'crop', left: 0, top: 0, width: 10, height: 10 }]), poison)),
    ).to.be.instanceOf(UndecodableImageError);
  });

  it('refuses a step that would make more pixels than --max-pixels; a larger input is refused as before', async () => {
    const enlarge = chain([{ op: 'resize', width: 2000, enlarge: true }]);
    const err = await rejectionOf(engine.run(enlarge, inputs['image/png']!, { maxPixels: 1_000_000 }));
    expect(err).to.be.instanceOf(ChainError);
    expect((err as Error).message).to.equal(
      'step 1 (resize) makes a 2000x1500 image, more than the 1000000 pixels allowed',
    );
    const big = await rejectionOf(
      engine.run(chain([{ op: 'thumbnail', size: 10 }]), inputs['image/png']!, { maxPixels: 1000 }),
    );
    expect(big).to.be.instanceOf(UndecodableImageError);
    expect((big as Error).message).to.match(/could not decode image: .*pixel limit/);
  });

  it('takes sizes from the image as shown: after its EXIF orientation, as sharp reads it', async () => {
    // stored 200x100, shown 100x200
    const turned = await sharp(await makePhotoLikeImage(200, 100, 4))
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const fits = await engine.run(chain([{ op: 'crop', left: 0, top: 150, width: 100, height: 50 }]), turned);
    expect([fits.width, fits.height]).to.deep.equal([100, 50]);
    const rotated = await engine.run(chain([{ op: 'rotate', angle: 90 }, { op: 'auto_orient' }]), turned);
    expect([rotated.width, rotated.height]).to.deep.equal([200, 100]);
    const err = await rejectionOf(engine.run(chain([{ op: 'crop', left: 0, top: 0, width: 150, height: 50 }]), turned));
    expect((err as Error).message).to.match(/does not lie inside the 100x200 image/);
  });

  it('abandons a chain when its signal aborts, with the reason', async () => {
    const big = await makeTestImage(1600, 1200, 'image/png', 11);
    const steps = chain([
      { op: 'blur', sigma: 20 },
      { op: 'sharpen', sigma: 5 },
      { op: 'blur', sigma: 20 },
    ]);
    const abort = new AbortController();
    const work = engine.run(steps, big, { signal: abort.signal, timeoutMs: 60_000 });
    abort.abort(new Error('the job deadline passed'));
    expect(((await rejectionOf(work)) as Error).message).to.equal('the job deadline passed');
    const after = await engine.run(chain([{ op: 'thumbnail', size: 32 }]), big);
    expect([after.width, after.height]).to.deep.equal([32, 24]);
  });
});
