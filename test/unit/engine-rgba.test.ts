// The jimp engine's pixel work (common/filters), measured against bare sharp doing the same steps: the
// same sizes to the pixel, and pixels within a tolerance per operation, on photo-like frames.
import { expect } from 'chai';
import sharp from 'sharp';
import { boxRadiusForSigma } from '../../common/filters/blur.js';
import { centreRgba, cropRgba, freshBuffer, orientRgba } from '../../common/filters/geometry.js';
import { lumaRgba } from '../../common/filters/luma.js';
import { runChainRgba } from '../../common/filters/rgba-chain.js';
import { chainGeometry, COURSE_BLUR_SIGMA, parseChain, type Operation } from '../../common/operations/index.js';
import { MIXED } from '../helpers/chains.js';
import { highFrequencyEnergy, makePhotoLikeImage, maxChannelSpread, type RgbaImage } from '../helpers/images.js';
import {
  asPng,
  difference,
  sharpReference,
  sharpRgba,
  TOLERANCE,
  worstMean,
  type Difference,
} from '../helpers/sharp-reference.js';

function chain(steps: unknown[]): Operation[] {
  const parsed = parseChain(steps);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.chain;
}

function copy(image: RgbaImage): RgbaImage {
  return { ...image, data: new Uint8Array(image.data) };
}

function describeDifference(d: Difference): string {
  return `mean per channel ${d.mean.map((m) => m.toFixed(3)).join(' ')}, max ${d.max}`;
}

describe("jimp engine's pixel operations against sharp", function () {
  this.timeout(60_000);

  let frame: RgbaImage;
  let framePng: Buffer;
  before(async () => {
    // odd sides, so that every rounding of a size or a centre shows
    frame = await sharpRgba(
      await sharp(await makePhotoLikeImage(333, 251, 7))
        .png()
        .toBuffer(),
    );
    framePng = await asPng(frame);
  });

  async function compare(steps: unknown[]): Promise<{ ours: RgbaImage; theirs: RgbaImage; d: Difference }> {
    const operations = chain(steps);
    const ours = runChainRgba(copy(frame), operations).bitmap;
    const theirs = await sharpReference(framePng, operations);
    const geometry = chainGeometry(operations, frame);
    if (!geometry.ok) throw new Error(geometry.error);
    expect([ours.width, ours.height], 'the size the contract gives').to.deep.equal([
      geometry.output.width,
      geometry.output.height,
    ]);
    expect([theirs.width, theirs.height], "sharp's size").to.deep.equal([ours.width, ours.height]);
    return { ours, theirs, d: difference(ours, theirs) };
  }

  const single: [Operation['op'], unknown[]][] = [
    ['crop', [{ op: 'crop', left: 17, top: 9, width: 120, height: 77 }]],
    ['rotate', [{ op: 'rotate', angle: 90 }]],
    ['rotate', [{ op: 'rotate', angle: 180 }]],
    ['rotate', [{ op: 'rotate', angle: 270 }]],
    ['flip', [{ op: 'flip' }]],
    ['flop', [{ op: 'flop' }]],
    ['auto_orient', [{ op: 'auto_orient' }]],
    ['format', [{ op: 'format', type: 'png' }]],
    ['resize', [{ op: 'resize', width: 200 }]],
    ['resize', [{ op: 'resize', height: 100 }]],
    ['resize', [{ op: 'resize', width: 120, height: 120 }]],
    ['resize', [{ op: 'resize', width: 200, height: 60, fit: 'contain' }]],
    ['resize', [{ op: 'resize', width: 90, height: 200, fit: 'fill' }]],
    ['resize', [{ op: 'resize', width: 150, height: 150, fit: 'inside' }]],
    ['resize', [{ op: 'resize', width: 150, height: 150, fit: 'outside' }]],
    ['resize', [{ op: 'resize', width: 41, height: 29, fit: 'fill' }]],
    ['resize', [{ op: 'resize', width: 700, enlarge: true }]],
    ['resize', [{ op: 'resize', width: 120, height: 600, fit: 'fill', enlarge: true }]],
    ['resize', [{ op: 'resize', width: 500, height: 500, fit: 'contain', enlarge: true }]],
    ['resize', [{ op: 'resize', width: 500, enlarge: false }]],
    ['thumbnail', [{ op: 'thumbnail', size: 100 }]],
    ['thumbnail', [{ op: 'thumbnail', size: 1000 }]],
    ['sharpen', [{ op: 'sharpen' }]],
    ['sharpen', [{ op: 'sharpen', sigma: 0.5 }]],
    ['sharpen', [{ op: 'sharpen', sigma: 3 }]],
    ['blur', [{ op: 'blur', sigma: 1 }]],
    ['blur', [{ op: 'blur' }]],
    ['blur', [{ op: 'blur', sigma: 12 }]],
  ];
  for (const [op, steps] of single) {
    it(`${JSON.stringify(steps[0])}: same size, within ${TOLERANCE[op]} per channel`, async () => {
      const { d } = await compare(steps);
      expect(worstMean(d), describeDifference(d)).to.be.at.most(TOLERANCE[op]);
    });
  }

  for (const steps of MIXED) {
    const names = steps.map((step) => step.op).join(' > ');
    it(`the chain ${names}: same sizes, within the steps' tolerance`, async () => {
      const { d } = await compare(steps);
      const tolerance = Math.max(...steps.map((step) => TOLERANCE[step.op]));
      expect(worstMean(d), describeDifference(d)).to.be.at.most(tolerance);
    });
  }

  it('contain pads with opaque black, centred as sharp centres it', async () => {
    const { ours, theirs } = await compare([{ op: 'resize', width: 200, height: 200, fit: 'contain' }]);
    // 333x251 fits as 200x151: 24 rows of padding above, 25 below
    for (const y of [0, 23, 176, 199])
      expect([...ours.data.subarray(y * 800, y * 800 + 4)], `row ${y}`).to.deep.equal([0, 0, 0, 255]);
    expect(difference(ours, theirs).max, 'no pixel of the image lands in the padding').to.be.below(64);
  });

  it('lends no colour from transparent pixels: alpha is premultiplied when resizing, as sharp does', async () => {
    // a checkerboard of holes, whose hidden colour is a loud green
    const holed = copy(frame);
    for (let y = 0; y < holed.height; y++)
      for (let x = 0; x < holed.width; x++)
        if (((x >> 3) + (y >> 3)) % 2) holed.data.set([0, 255, 0, 0], (y * holed.width + x) * 4);
    // a transparent pixel's colour says nothing: compare the colour as it shows (premultiplied) and alpha
    const shown = (image: RgbaImage): RgbaImage => {
      const data = new Uint8Array(image.data);
      for (let i = 0; i < data.length; i += 4)
        for (let c = 0; c < 3; c++) data[i + c] = Math.round((data[i + c]! * data[i + 3]!) / 255);
      return { ...image, data };
    };
    for (const steps of [[{ op: 'resize', width: 150 }], [{ op: 'resize', width: 500, enlarge: true }]]) {
      const operations = chain(steps);
      const ours = runChainRgba(copy(holed), operations).bitmap;
      const theirs = await sharpReference(await asPng(holed), operations);
      const d = difference(shown(ours), shown(theirs));
      // measured 0.8 to 1.2 per colour channel, 1.4 to 2.3 for alpha (hard edges: every difference of a
      // weight shows 255 high); without premultiplying, the green bleeds: 4 to 16
      expect(worstMean(d), describeDifference(d)).to.be.at.most(3);
    }
  });

  it('applies each EXIF orientation as sharp does when it reads an image', async () => {
    const small = copy(frame);
    const stored = await asPng(small);
    for (let orientation = 1; orientation <= 8; orientation++) {
      const tagged = await sharp(stored).withMetadata({ orientation }).png().toBuffer();
      const theirs = await sharpRgba(await sharp(tagged, { autoOrient: true }).png().toBuffer());
      const ours = orientRgba(copy(small), orientation, freshBuffer);
      expect([ours.width, ours.height], `orientation ${orientation}`).to.deep.equal([theirs.width, theirs.height]);
      expect(difference(ours, theirs).max, `orientation ${orientation}`).to.equal(0);
    }
  });

  it("grayscale writes jimp's luma (the course's values): R = G = B, a known distance from sharp's", async () => {
    const operations = chain([{ op: 'grayscale' }]);
    const { bitmap, grey } = runChainRgba(copy(frame), operations);
    expect(grey).to.equal(true);
    expect(maxChannelSpread(bitmap)).to.equal(0);
    const luma = copy(frame);
    lumaRgba(luma.data);
    expect(difference(bitmap, luma).max).to.equal(0);
    // libvips' grey is the luminance in linear light: darker on saturated colours
    const d = difference(bitmap, await sharpReference(framePng, operations));
    expect(worstMean(d), describeDifference(d)).to.be.within(1, 20);
  });

  it('keeps a grey image exactly grey through every other operation', () => {
    const steps = chain([
      { op: 'grayscale' },
      { op: 'sharpen' },
      { op: 'resize', width: 150, height: 150, fit: 'contain' },
      { op: 'blur', sigma: 1 },
      { op: 'rotate', angle: 90 },
      { op: 'resize', width: 400, enlarge: true },
    ]);
    const { bitmap, grey } = runChainRgba(copy(frame), steps);
    expect(grey).to.equal(true);
    expect(maxChannelSpread(bitmap)).to.equal(0);
  });

  it('blur softens and sharpen sharpens, in proportion to sigma', () => {
    const energy = (steps: unknown[]): number => highFrequencyEnergy(runChainRgba(copy(frame), chain(steps)).bitmap);
    const original = highFrequencyEnergy(frame);
    expect(energy([{ op: 'blur', sigma: 1 }])).to.be.below(original * 0.8);
    expect(energy([{ op: 'blur', sigma: 4 }])).to.be.below(energy([{ op: 'blur', sigma: 1 }]));
    expect(energy([{ op: 'sharpen', sigma: 1 }])).to.be.above(original * 1.1);
    expect(energy([{ op: 'sharpen', sigma: 3 }])).to.be.above(original * 1.1);
  });

  it('blurs with the box whose variance matches sigma: the course blur is radius 5, a tiny sigma does nothing', () => {
    expect(boxRadiusForSigma(COURSE_BLUR_SIGMA)).to.equal(5);
    expect(boxRadiusForSigma(1)).to.equal(1);
    expect(boxRadiusForSigma(10)).to.equal(12);
    const untouched = runChainRgba(copy(frame), chain([{ op: 'blur', sigma: 0.3 }])).bitmap;
    expect(difference(untouched, frame).max).to.equal(0);
  });

  it('refuses a crop outside the image, and crops and pads in place of a copy where it can', () => {
    expect(() => cropRgba(copy(frame), 300, 0, 34, 10)).to.throw(RangeError, /does not lie inside the 333x251 image/);
    const cropped = copy(frame);
    expect(cropRgba(cropped, 1, 1, 10, 10).data.buffer).to.equal(cropped.data.buffer);
    let allocated = 0;
    const counting = (bytes: number): Uint8Array => {
      allocated += bytes;
      return new Uint8Array(bytes);
    };
    centreRgba(copy(frame), 100, 100, counting);
    expect(allocated, 'a centre crop needs no new buffer').to.equal(0);
    centreRgba(copy(frame), 400, 400, counting);
    expect(allocated).to.equal(400 * 400 * 4);
  });
});
