// A chain of operations done with bare sharp calls, as a reference the engines are measured against, and
// the measures: pixel differences per channel.
import sharp, { type Sharp } from 'sharp';
import type { Operation } from '../../common/operations/index.js';
import type { RgbaImage } from './images.js';

/** What each operation is in sharp's own terms (the input is oriented by sharp when read). */
function sharpStep(pipeline: Sharp, step: Operation): Sharp {
  switch (step.op) {
    case 'grayscale':
      return pipeline.grayscale();
    case 'blur':
      return pipeline.blur(step.sigma);
    case 'sharpen':
      return pipeline.sharpen({ sigma: step.sigma });
    case 'resize':
      return pipeline.resize(step.width, step.height, {
        fit: step.fit,
        withoutEnlargement: !step.enlarge,
        fastShrinkOnLoad: false,
      });
    case 'thumbnail':
      return pipeline.resize(step.size, step.size, {
        fit: 'inside',
        withoutEnlargement: true,
        fastShrinkOnLoad: false,
      });
    case 'crop':
      return pipeline.extract(step);
    case 'rotate':
      return pipeline.rotate(step.angle);
    case 'flip':
      return pipeline.flip();
    case 'flop':
      return pipeline.flop();
    case 'auto_orient':
    case 'format':
      return pipeline;
  }
}

/**
 * The chain's pixels by sharp, RGBA: one sharp pipeline per step (sharp reorders the operations of one
 * pipeline), raw pixels between them.
 */
export async function sharpReference(input: Buffer, chain: readonly Operation[]): Promise<RgbaImage> {
  let current = await sharp(input, { autoOrient: true }).raw().toBuffer({ resolveWithObject: true });
  for (const step of chain) {
    const { width, height, channels } = current.info;
    current = await sharpStep(sharp(current.data, { raw: { width, height, channels } }), step)
      .raw()
      .toBuffer({ resolveWithObject: true });
  }
  const { width, height, channels } = current.info;
  return rgbaOfRaw(current.data, width, height, channels);
}

/** Raw pixels of 1 to 4 channels as RGBA. */
function rgbaOfRaw(raw: Uint8Array, width: number, height: number, channels: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const from = p * channels;
    const grey = channels <= 2;
    data[p * 4] = raw[from]!;
    data[p * 4 + 1] = grey ? raw[from]! : raw[from + 1]!;
    data[p * 4 + 2] = grey ? raw[from]! : raw[from + 2]!;
    data[p * 4 + 3] = channels === 2 || channels === 4 ? raw[from + channels - 1]! : 255;
  }
  return { width, height, data };
}

/** Any image sharp reads (PNG, JPEG, WebP, AVIF), decoded by sharp to RGBA, without orienting it. */
export async function sharpRgba(encoded: Buffer): Promise<RgbaImage & { channels: number }> {
  const { data, info } = await sharp(encoded).raw().toBuffer({ resolveWithObject: true });
  return { ...rgbaOfRaw(data, info.width, info.height, info.channels), channels: info.channels };
}

/** The decoded pixels of an image stored as a lossless PNG (the same pixels for every decoder). */
export async function asPng(image: RgbaImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 4 } })
    .png()
    .toBuffer();
}

export interface Difference {
  /** Mean absolute difference of R, G, B and A, each over all pixels. */
  mean: [number, number, number, number];
  /** The largest difference of any channel of any pixel. */
  max: number;
}

/** Per channel; the images must have the same size. */
export function difference(a: RgbaImage, b: RgbaImage): Difference {
  if (a.width !== b.width || a.height !== b.height)
    throw new Error(`sizes differ: ${a.width}x${a.height} and ${b.width}x${b.height}`);
  const sums = [0, 0, 0, 0];
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    sums[i % 4]! += d;
    if (d > max) max = d;
  }
  const pixels = a.width * a.height;
  return { mean: sums.map((sum) => sum / pixels) as Difference['mean'], max };
}

/** The largest of the four channels' means. */
export function worstMean(d: Difference): number {
  return Math.max(...d.mean);
}

/**
 * The largest mean absolute difference per channel (of 255) allowed against sharp, per operation: about
 * twice the worst measured on photo-like frames (in brackets).
 * - moves (crop, rotate, flip, flop, orientation) copy pixels: exact [0].
 * - resize and thumbnail follow libvips' steps (box shrink, Lanczos-3 reduce, Catmull-Rom upsizing at
 *   libvips' sample positions) [0.13 to 0.50; single pixels at the edges differ by up to 25]. Sampling
 *   the enlarged image half a pixel off, as a textbook resize would, measures 0.8 to 2.3.
 * - sharpen is libvips' own algorithm on L* [0.18, no pixel off by more than 1].
 * - blur is two passes of a box against sharp's Gaussian of the same variance [0.6 at sigma 1, 1.0 for
 *   the course's, 2.0 at sigma 12]; sharp also leaves an opaque RGBA image at alpha 253 after its blur.
 */
export const TOLERANCE: Record<Operation['op'], number> = {
  crop: 0,
  rotate: 0,
  flip: 0,
  flop: 0,
  auto_orient: 0,
  format: 0,
  resize: 1,
  thumbnail: 1,
  sharpen: 0.5,
  blur: 3,
  // jimp's luma of the gamma-encoded values, kept for the course, against libvips' luminance in linear
  // light: a known gap of 10 to 12.5 on these frames, tested on its own
  grayscale: Number.NaN,
};

/**
 * What comparing two engines' JPEG results adds: sharp (mozjpeg) and jimp (libjpeg-turbo) encode the same
 * pixels a little differently, by up to 1.5 per channel measured at quality 90 on a 64x48 thumbnail (0.3
 * to 0.7 on 320x240 frames). Both decode a JPEG to the same pixels.
 */
export const JPEG_ENCODERS = 2.5;
