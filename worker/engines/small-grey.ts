// The grayscale filter of a small plain PNG without libvips. libvips spends 2-3 ms of CPU on a pipeline
// whatever the image's size (a 64x64 PNG: 1 ms to decode, 4 ms to turn grey and encode), where zlib and one
// loop here take 0.8 ms. The grey is libvips' own (sharp's `grayscale()`): Rec. 709 luminance of linear
// light, turned back to sRGB through libvips' 8-bit tables and rounded as it rounds.
import type { Operation } from '../../common/operations/index.js';
import { readPlainPng, writePlainPng, type PlainPixels } from './plain-png.js';
import type { FilterResult } from './types.js';

/**
 * The images taken here: up to 128 x 128 pixels (4 ms of zlib on the worker's thread at most; half of
 * libvips' CPU). At 256 x 256 zlib costs nearly what libvips does, and libvips runs off the event loop.
 */
export const SMALL_PIXELS = 16_384;

const f32 = Math.fround;

/** libvips' 8-bit sRGB tables: to linear light (float), and back (an int a step, one more to interpolate to). */
const TO_LINEAR = new Float32Array(256);
const TO_SRGB = new Int32Array(257);
for (let value = 0; value < 256; value++) {
  const f = f32(value / 255);
  TO_LINEAR[value] = f <= 0.04045 ? f / 12.92 : ((f + 0.055) / 1.055) ** 2.4;
  TO_SRGB[value] = Math.round(255 * f32(f <= 0.0031308 ? 12.92 * f : 1.055 * f ** (1 / 2.4) - 0.055));
}
TO_SRGB[256] = TO_SRGB[255]!;

/** Rounds to the nearest integer, halves to the even one (C's rint). */
function rint(value: number): number {
  const nearest = Math.round(value);
  return nearest - value === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
}

/** One grey level from 8-bit sRGB. */
function greyOf(red: number, green: number, blue: number): number {
  const luminance = f32(0.2126 * TO_LINEAR[red]! + 0.7152 * TO_LINEAR[green]! + 0.0722 * TO_LINEAR[blue]!);
  const scaled = Math.min(255, Math.max(0, luminance * 255));
  const index = Math.trunc(scaled);
  const low = TO_SRGB[index]!;
  return rint(f32(low + f32(f32(TO_SRGB[index + 1]! - low) * f32(scaled - index))));
}

/** R = G = B from RGB or RGBA, in place, the alpha as it was. */
export function greyRgb(pixels: PlainPixels): void {
  const { data, channels } = pixels;
  for (let at = 0; at < data.length; at += channels) {
    const grey = greyOf(data[at]!, data[at + 1]!, data[at + 2]!);
    data[at] = grey;
    data[at + 1] = grey;
    data[at + 2] = grey;
  }
}

/**
 * The result of a chain that is the grayscale filter alone on a plain PNG of up to SMALL_PIXELS pixels (and
 * `maxPixels`), RGB or RGBA, written as sharp writes it: R = G = B, the alpha kept, 8 bits a channel. Null for
 * anything else, which libvips runs.
 */
export function greySmallPng(
  chain: readonly Operation[],
  input: Buffer,
  maxPixels: number | undefined,
): FilterResult | null {
  if (chain.length !== 1 || chain[0]!.op !== 'grayscale') return null;
  const pixels = readPlainPng(input, Math.min(SMALL_PIXELS, maxPixels ?? SMALL_PIXELS));
  if (!pixels || pixels.channels < 3) return null;
  greyRgb(pixels);
  const data = writePlainPng(pixels);
  return { data, mime: 'image/png', width: pixels.width, height: pixels.height };
}
