// Unsharp masking as sharp's sharpen({ sigma }) does it (libvips' vips_sharpen with sharp's defaults):
// on the lightness L* of CIE Lab only, so colours do not fringe. The difference between L* and its
// Gaussian blur goes through a curve (slope 1 up to 2 L*, slope 2 beyond, at most 10 L* lighter and 20
// darker) and is added back. Hue and chroma (a*, b*) are kept: with them fixed, a change of L* moves
// the three Lab terms f(X), f(Y), f(Z) by the same amount, so X, Y, Z follow without a full Lab round trip.
import type { RgbaBitmap } from './types.js';

// sharp's defaults for sharpen({ sigma })
const FLAT = 1; // m1: slope up to X1
const JAGGED = 2; // m2: slope beyond it
const X1 = 2;
const MAX_LIGHTER = 10; // y2
const MAX_DARKER = 20; // y3

/** libvips stops its sharpening mask where the Gaussian falls under this part of its peak (10%). */
const MASK_MIN_AMPLITUDE = 0.1;

// sRGB primaries, D65 white (libvips' own)
const XN = 0.95047;
const ZN = 1.08883;
const TO_XYZ = [
  [0.4124564, 0.3575761, 0.1804375],
  [0.2126729, 0.7151522, 0.072175],
  [0.0193339, 0.119192, 0.9503041],
] as const;
const FROM_XYZ = [
  [3.2404542, -1.5371385, -0.4985314],
  [-0.969266, 1.8760108, 0.041556],
  [0.0556434, -0.2040259, 1.0572252],
] as const;

const EPSILON = (6 / 29) ** 3;
const KAPPA = 3 * (6 / 29) ** 2;

function labF(t: number): number {
  return t > EPSILON ? Math.cbrt(t) : t / KAPPA + 4 / 29;
}

function labFInverse(u: number): number {
  return u > 6 / 29 ? u * u * u : KAPPA * (u - 4 / 29);
}

let tables: { linear: Float64Array; encode: Uint8Array } | undefined;

/** sRGB byte -> linear light, and linear light (in 65536 steps) -> sRGB byte. */
function srgbTables(): { linear: Float64Array; encode: Uint8Array } {
  if (tables) return tables;
  const linear = new Float64Array(256);
  for (let v = 0; v < 256; v++) {
    const c = v / 255;
    linear[v] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }
  const encode = new Uint8Array(65536);
  for (let i = 0; i < encode.length; i++) {
    const l = i / 65535;
    const c = l <= 0.0031308 ? 12.92 * l : 1.055 * l ** (1 / 2.4) - 0.055;
    encode[i] = Math.round(Math.min(1, Math.max(0, c)) * 255);
  }
  tables = { linear, encode };
  return tables;
}

function encodeLinear(encode: Uint8Array, l: number): number {
  return encode[Math.round(Math.min(1, Math.max(0, l)) * 65535)]!;
}

/** libvips' integer Gaussian mask (vips_gaussmat, integer precision): weights rint(20 g), cut at MASK_MIN_AMPLITUDE. */
function gaussianMask(sigma: number): Float64Array {
  const twoSigmaSquared = 2 * sigma * sigma;
  let reach = 0;
  while (Math.exp(-((reach + 1) ** 2) / twoSigmaSquared) >= MASK_MIN_AMPLITUDE) reach += 1;
  const mask = new Float64Array(2 * reach + 1);
  let sum = 0;
  for (let i = -reach; i <= reach; i++) {
    const w = Math.round(20 * Math.exp(-(i * i) / twoSigmaSquared));
    mask[i + reach] = w;
    sum += w;
  }
  for (let i = 0; i < mask.length; i++) mask[i]! /= sum;
  return mask;
}

/** Separable blur of one channel of floats, edges extended. */
function blurPlane(plane: Float32Array, width: number, height: number, mask: Float64Array): Float32Array {
  const reach = (mask.length - 1) / 2;
  const across = new Float32Array(plane.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -reach; k <= reach; k++)
        sum += plane[row + Math.min(width - 1, Math.max(0, x + k))]! * mask[k + reach]!;
      across[row + x] = sum;
    }
  }
  const out = new Float32Array(plane.length);
  for (let k = -reach; k <= reach; k++) {
    const w = mask[k + reach]!;
    for (let y = 0; y < height; y++) {
      const from = Math.min(height - 1, Math.max(0, y + k)) * width;
      const to = y * width;
      for (let x = 0; x < width; x++) out[to + x]! += across[from + x]! * w;
    }
  }
  return out;
}

/** How much L* changes for a difference `d` between L* and its blur. */
function curve(d: number): number {
  let y: number;
  if (d < -X1) y = (d + X1) * JAGGED - X1 * FLAT;
  else if (d < X1) y = d * FLAT;
  else y = (d - X1) * JAGGED + X1 * FLAT;
  return Math.min(MAX_LIGHTER, Math.max(-MAX_DARKER, y));
}

/**
 * Sharpens in place. `grey`: every pixel has R = G = B (after grayscale), and keeps it exactly.
 * Alpha is left as it is.
 */
export function sharpenRgba({ data, width, height }: RgbaBitmap, sigma: number, grey: boolean): void {
  const { linear, encode } = srgbTables();
  const pixels = width * height;
  const lightness = new Float32Array(pixels);
  for (let p = 0, i = 0; p < pixels; p++, i += 4) {
    const y = grey
      ? linear[data[i]!]!
      : TO_XYZ[1][0] * linear[data[i]!]! + TO_XYZ[1][1] * linear[data[i + 1]!]! + TO_XYZ[1][2] * linear[data[i + 2]!]!;
    lightness[p] = 116 * labF(y) - 16;
  }
  const blurred = blurPlane(lightness, width, height, gaussianMask(sigma));
  for (let p = 0, i = 0; p < pixels; p++, i += 4) {
    const l = lightness[p]!;
    const sharpened = Math.min(100, Math.max(0, l + curve(l - blurred[p]!)));
    if (sharpened === l) continue;
    const shift = (sharpened - l) / 116;
    if (grey) {
      const v = encodeLinear(encode, labFInverse((sharpened + 16) / 116));
      data[i] = v;
      data[i + 1] = v;
      data[i + 2] = v;
      continue;
    }
    const r = linear[data[i]!]!;
    const g = linear[data[i + 1]!]!;
    const b = linear[data[i + 2]!]!;
    const x = XN * labFInverse(labF((TO_XYZ[0][0] * r + TO_XYZ[0][1] * g + TO_XYZ[0][2] * b) / XN) + shift);
    const y = labFInverse((sharpened + 16) / 116);
    const z = ZN * labFInverse(labF((TO_XYZ[2][0] * r + TO_XYZ[2][1] * g + TO_XYZ[2][2] * b) / ZN) + shift);
    data[i] = encodeLinear(encode, FROM_XYZ[0][0] * x + FROM_XYZ[0][1] * y + FROM_XYZ[0][2] * z);
    data[i + 1] = encodeLinear(encode, FROM_XYZ[1][0] * x + FROM_XYZ[1][1] * y + FROM_XYZ[1][2] * z);
    data[i + 2] = encodeLinear(encode, FROM_XYZ[2][0] * x + FROM_XYZ[2][1] * y + FROM_XYZ[2][2] * z);
  }
}
