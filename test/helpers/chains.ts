// Chains for the engine tests: one per operation (every operation of the contract), and what an encoded
// result says about itself in its header, read without the engine that wrote it.
import { expect } from 'chai';
import { imageSize } from 'image-size';
import sharp from 'sharp';
import type { FilterName } from '../../common/filters/index.js';
import { chainOfFilter, OPERATION_SPECS, parseChain, type Operation } from '../../common/operations/index.js';
import type { FilterEngine } from '../../worker/engines/index.js';
import { greySmallPng } from '../../worker/engines/small-grey.js';
import { jpegComponentCount, makePhotoLikeImage, makeTestImage } from './images.js';

export function chain(steps: unknown[]): Operation[] {
  const parsed = parseChain(steps);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.chain;
}

/** One chain per operation, with every output format, for a 320x240 input. */
export const ONE_OF_EACH: readonly Operation[][] = [
  [{ op: 'grayscale' }],
  [{ op: 'blur', sigma: 2 }],
  [{ op: 'sharpen' }],
  [{ op: 'resize', width: 160 }],
  [{ op: 'resize', width: 100, height: 100, fit: 'contain' }],
  [{ op: 'resize', width: 400, height: 400, fit: 'cover', enlarge: true }],
  [{ op: 'thumbnail', size: 64 }],
  [{ op: 'crop', left: 10, top: 20, width: 50, height: 40 }],
  [{ op: 'rotate', angle: 90 }],
  [{ op: 'rotate', angle: 180 }],
  [{ op: 'rotate', angle: 270 }],
  [{ op: 'auto_orient' }],
  [{ op: 'flip' }],
  [{ op: 'flop' }],
  [{ op: 'format', type: 'png' }],
  [{ op: 'format', type: 'jpeg', quality: 70 }],
  [{ op: 'format', type: 'webp' }],
  [{ op: 'format', type: 'avif' }],
].map(chain);

/** The operations ONE_OF_EACH leaves out: none, or a new operation waits for its test. */
export function untested(): string[] {
  const covered = new Set(ONE_OF_EACH.flat().map((step) => step.op));
  return OPERATION_SPECS.map((spec) => spec.name).filter((name) => !covered.has(name));
}

/** Chains of several steps, each kind of step among them, for a 333x251 or 320x240 input. */
export const MIXED: readonly Operation[][] = [
  [
    { op: 'resize', width: 200 },
    { op: 'sharpen' },
    { op: 'rotate', angle: 90 },
    { op: 'crop', left: 5, top: 7, width: 100, height: 150 },
  ],
  [
    { op: 'crop', left: 40, top: 30, width: 101, height: 67 },
    { op: 'resize', width: 300, height: 300, fit: 'contain', enlarge: true },
    { op: 'format', type: 'jpeg', quality: 85 },
  ],
  [
    { op: 'thumbnail', size: 128 },
    { op: 'flip' },
    { op: 'flop' },
    { op: 'blur', sigma: 1.5 },
    { op: 'format', type: 'png' },
  ],
  [
    { op: 'rotate', angle: 270 },
    { op: 'resize', width: 100, height: 100 },
    { op: 'sharpen', sigma: 2 },
    { op: 'auto_orient' },
  ],
].map(chain);

/** Originals of every kind the course filters meet, to check their results byte for byte. */
export const COURSE_ORIGINALS: Readonly<Record<string, () => Promise<Buffer>>> = {
  'a colour PNG': () => makeTestImage(320, 240, 'image/png', 42),
  'a colour JPEG': () => makeTestImage(320, 240, 'image/jpeg', 42),
  'a photo-like JPEG': () => makePhotoLikeImage(640, 480, 3),
  'a PNG of odd sides': () => makeTestImage(97, 61, 'image/png', 9),
  'a grey JPEG': async () =>
    sharp(await makePhotoLikeImage(200, 150, 4))
      .grayscale()
      .jpeg()
      .toBuffer(),
  'a half-transparent PNG': async () =>
    sharp(await makeTestImage(120, 90, 'image/png', 5))
      .ensureAlpha(0.5)
      .png()
      .toBuffer(),
};

/**
 * The course filter gives `before` (what the engine's code gave before chains), by apply() and by run(). A small
 * plain PNG turned grey by the sharp engine is written without libvips (worker/engines/small-grey.ts): its
 * bytes are zlib's, not libvips', and its pixels, channels and size are `before`'s.
 */
export async function expectCourseBytes(
  engine: FilterEngine,
  filter: FilterName,
  input: Buffer,
  before: Buffer,
): Promise<void> {
  const withoutLibvips = engine.name === 'sharp' && greySmallPng(chainOfFilter(filter), input, undefined) !== null;
  const expectSame = async (result: Buffer, how: string): Promise<void> => {
    if (!withoutLibvips) {
      expect(result.equals(before), `${how} gives the bytes it gave before chains`).to.equal(true);
      return;
    }
    const [ours, theirs] = await Promise.all(
      [result, before].map((png) => sharp(png).raw().toBuffer({ resolveWithObject: true })),
    );
    expect(ours!.info, `${how}: the size and channels of before chains`).to.deep.equal(theirs!.info);
    expect(ours!.data.equals(theirs!.data), `${how} gives the pixels it gave before chains`).to.equal(true);
  };
  await expectSame((await engine.apply(filter, input)).data, 'apply()');
  await expectSame((await engine.run(chainOfFilter(filter), input)).data, 'run() of the one-step chain');
}

/** Resolves with the rejection reason; fails if the promise resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

export function describeChain(steps: readonly Operation[]): string {
  return steps.map((step) => JSON.stringify(step)).join(' > ');
}

/** The format, size and channels an encoded image declares, from its own header. */
export interface Declared {
  format: 'png' | 'jpeg' | 'webp' | 'avif' | 'unknown';
  width: number;
  height: number;
  /** Colour channels plus alpha as stored: 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha; 0 if not read. */
  channels: number;
}

export function declared(encoded: Buffer): Declared {
  const size = imageSize(encoded);
  const width = size.width ?? 0;
  const height = size.height ?? 0;
  if (encoded.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) {
    // IHDR's colour type: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA
    const channels = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[encoded[25]!] ?? 0;
    return { format: 'png', width, height, channels };
  }
  if (encoded[0] === 0xff && encoded[1] === 0xd8)
    return { format: 'jpeg', width, height, channels: jpegComponentCount(encoded) };
  if (encoded.toString('latin1', 0, 4) === 'RIFF' && encoded.toString('latin1', 8, 12) === 'WEBP')
    return { format: 'webp', width, height, channels: 0 };
  if (encoded.toString('latin1', 4, 8) === 'ftyp' && encoded.toString('latin1', 8, 12) === 'avif')
    return { format: 'avif', width, height, channels: 0 };
  return { format: 'unknown', width, height, channels: 0 };
}
