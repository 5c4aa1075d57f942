// The grayscale of small plain PNGs without libvips: libvips' grey for every 8-bit colour, sharp's pixels and
// channels for PNGs written with each of the five row filters, and everything else left to libvips.
import { inflateSync } from 'node:zlib';
import { expect } from 'chai';
import sharp, { type PngOptions } from 'sharp';
import { readPlainPng } from '../../worker/engines/plain-png.js';
import { createSharpEngine } from '../../worker/engines/sharp-engine.js';
import { greyRgb, greySmallPng, SMALL_PIXELS } from '../../worker/engines/small-grey.js';
import { makeTestImage } from '../helpers/images.js';

const GREY = [{ op: 'grayscale' }] as const;

/** A PNG sharp writes from raw pixels: a gradient with noise, so its adaptive filtering picks every filter. */
async function sharpPng(width: number, height: number, channels: 3 | 4, options: PngOptions = {}) {
  const raw = Buffer.alloc(width * height * channels);
  let seed = width * 31 + height;
  for (let at = 0; at < raw.length; at++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const pixel = Math.floor(at / channels);
    const smooth = ((pixel % width) * 3 + Math.floor(pixel / width) * 5 + (at % channels) * 70) & 255;
    raw[at] = seed % 7 === 0 ? seed & 255 : smooth;
  }
  return sharp(raw, { raw: { width, height, channels } })
    .png({ adaptiveFiltering: true, ...options })
    .toBuffer();
}

/** The filter byte of every row of a plain 8-bit PNG. */
function rowFilters(png: Buffer): number[] {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const channels = ({ 2: 3, 6: 4 } as Record<number, number>)[png[25]!]!;
  const parts: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') parts.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const rows = inflateSync(Buffer.concat(parts));
  return Array.from({ length: height }, (_, y) => rows[y * (width * channels + 1)]!);
}

async function sharpGrey(png: Buffer) {
  return sharp(await sharp(png).grayscale().png().toBuffer())
    .raw()
    .toBuffer({ resolveWithObject: true });
}

describe('the grayscale of small plain PNGs, without libvips', function () {
  this.timeout(60_000);

  it("turns each of the 16.7M 8-bit colours into libvips' grey, to one level", async () => {
    const side = 4096;
    const data = new Uint8Array(side * side * 3);
    for (let colour = 0, at = 0; colour < side * side; colour++, at += 3) {
      data[at] = colour >> 16;
      data[at + 1] = (colour >> 8) & 255;
      data[at + 2] = colour & 255;
    }
    const theirs = await sharp(Buffer.from(data), { raw: { width: side, height: side, channels: 3 } })
      .grayscale()
      .raw()
      .toBuffer();
    greyRgb({ data, width: side, height: side, channels: 3 });
    let differ = 0;
    let largest = 0;
    let notGrey = 0;
    for (let colour = 0; colour < side * side; colour++) {
      const ours = data[colour * 3]!;
      if (data[colour * 3 + 1] !== ours || data[colour * 3 + 2] !== ours) notGrey += 1;
      const off = Math.abs(ours - theirs[colour]!);
      if (off > 0) differ += 1;
      largest = Math.max(largest, off);
    }
    expect(notGrey, 'colours left with R, G, B apart').to.equal(0);
    // measured: 95 colours a level apart, each a value that falls on a half between two levels
    expect(largest, 'the largest difference in levels').to.be.at.most(1);
    expect(differ, 'colours a level apart').to.be.at.most(200);
  });

  it("gives sharp's pixels and channels for RGB and RGBA PNGs of each row filter, up to 128 x 128", async () => {
    const inputs: Buffer[] = [];
    for (const [width, height] of [
      [1, 1],
      [3, 2],
      [97, 61],
      [128, 128],
    ] as const) {
      inputs.push(await sharpPng(width, height, 3), await sharpPng(width, height, 4));
    }
    inputs.push(await makeTestImage(64, 64, 'image/png', 5), await makeTestImage(128, 128, 'image/png', 6));
    const filters = new Set(inputs.flatMap(rowFilters));
    expect([...filters].sort(), 'the row filters the inputs use').to.deep.equal([0, 1, 2, 3, 4]);
    for (const input of inputs) {
      const ours = greySmallPng(GREY, input, undefined);
      expect(ours, 'taken without libvips').to.not.equal(null);
      const decoded = await sharp(ours!.data).raw().toBuffer({ resolveWithObject: true });
      const theirs = await sharpGrey(input);
      expect(decoded.info.channels).to.equal(theirs.info.channels);
      expect([ours!.width, ours!.height]).to.deep.equal([theirs.info.width, theirs.info.height]);
      expect(decoded.data.equals(theirs.data), `the pixels of a ${theirs.info.width}x${theirs.info.height}`).to.equal(
        true,
      );
    }
  });

  it('leaves to libvips every other PNG, other chains, and what is damaged or too large', async () => {
    const plain = await sharpPng(16, 16, 4);
    const grey = await sharp(await sharpPng(16, 16, 3))
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const crcBroken = Buffer.from(plain);
    crcBroken[40] = crcBroken[40]! ^ 0xff;
    const others: Record<string, Buffer> = {
      'a grey PNG': grey,
      'a palette PNG': await sharp(plain).png({ palette: true }).toBuffer(),
      'a 16-bit PNG': await sharp(plain).toColourspace('rgb16').png().toBuffer(),
      'an interlaced PNG': await sharp(plain).png({ progressive: true }).toBuffer(),
      'a PNG with a colour profile': await sharp(plain).png().withIccProfile('p3').toBuffer(),
      'a JPEG': await makeTestImage(16, 16, 'image/jpeg'),
      'a PNG of 129 x 128': await sharpPng(129, 128, 3),
      'a PNG with a broken CRC': crcBroken,
      'a PNG with bytes after its end': Buffer.concat([plain, Buffer.from([0])]),
      'a PNG cut short': plain.subarray(0, plain.length - 20),
    };
    expect(readPlainPng(grey, SMALL_PIXELS)?.channels, 'a grey PNG is read').to.equal(1);
    for (const [what, input] of Object.entries(others)) {
      expect(greySmallPng(GREY, input, undefined), what).to.equal(null);
    }
    expect(greySmallPng([{ op: 'blur', sigma: 2 }], plain, undefined), 'a blur').to.equal(null);
    expect(greySmallPng(GREY, plain, 255), 'over the pixel limit').to.equal(null);
    expect(greySmallPng(GREY, plain, 256), 'at the pixel limit').to.not.equal(null);
  });

  it("is what the sharp engine runs for them, and sharp's own errors stay for the rest", async () => {
    const engine = await createSharpEngine(1);
    try {
      const input = await makeTestImage(64, 64, 'image/png', 7);
      const applied = await engine.apply('grayscale', input);
      expect(applied.data.equals(greySmallPng(GREY, input, undefined)!.data)).to.equal(true);
      const cut = input.subarray(0, input.length - 30);
      const error = await engine.apply('grayscale', cut).catch((reason: unknown) => reason);
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).name).to.equal('UndecodableImageError');
    } finally {
      await engine.close();
    }
  });
});
