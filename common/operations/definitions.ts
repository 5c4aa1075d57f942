import type { Param } from './params.js';

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp', 'avif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const FITS = ['cover', 'contain', 'inside', 'outside', 'fill'] as const;
export type Fit = (typeof FITS)[number];

/** The largest width or height an operation may ask for. */
export const MAX_SIDE = 16_384;

/** Two passes of an 11-pixel box blur have the variance of this Gaussian: the course's blur on both engines. */
export const COURSE_BLUR_SIGMA = Math.sqrt((2 * (11 ** 2 - 1)) / 12);

/** One step of a chain, every parameter filled in. */
export type Operation =
  | { op: 'grayscale' }
  | { op: 'blur'; sigma: number }
  | { op: 'sharpen'; sigma: number }
  | { op: 'resize'; width: number | null; height: number | null; fit: Fit; enlarge: boolean }
  | { op: 'thumbnail'; size: number }
  | { op: 'crop'; left: number; top: number; width: number; height: number }
  | { op: 'rotate'; angle: 90 | 180 | 270 }
  | { op: 'auto_orient' }
  | { op: 'flip' }
  | { op: 'flop' }
  | { op: 'format'; type: OutputFormat; quality: number };

export type OperationName = Operation['op'];

export interface Size {
  width: number;
  height: number;
}

export interface OperationSpec {
  name: OperationName;
  description: string;
  params: Readonly<Record<string, Param>>;
  /** Only as the chain's last step. */
  lastOnly?: boolean;
  /** What the parameters must satisfy together, beyond each one's range; null when they do. */
  check?(step: Operation): string | null;
  /** The image's size after the step, or why the step cannot apply to an image of `size`. */
  geometry(step: Operation, size: Size): Size | string;
}

const same = (_step: Operation, size: Size): Size => size;

/**
 * The size sharp's resize gives (its ResolveShrink, then libvips rounding to the nearest pixel, halves
 * up), for each `fit`; both engines follow it, so the same chain gives the same dimensions.
 */
export function resizedSize(size: Size, width: number | null, height: number | null, fit: Fit, enlarge: boolean): Size {
  return resizePlan(size, width, height, fit, enlarge).output;
}

/**
 * The resize in two parts: the image scaled (`scaled`), then cropped to the box (cover) or padded to it
 * (contain) into `output`; for the other fits the two are the same. An engine that scales to `scaled`
 * exactly, then crops or pads, makes `output` whatever its decoder's own rounding.
 */
export function resizePlan(
  size: Size,
  width: number | null,
  height: number | null,
  fit: Fit,
  enlarge: boolean,
): { scaled: Size; output: Size } {
  let hshrink = 1;
  let vshrink = 1;
  if (width !== null && height !== null) {
    hshrink = size.width / width;
    vshrink = size.height / height;
    if (fit === 'cover' || fit === 'outside') hshrink = vshrink = Math.min(hshrink, vshrink);
    else if (fit === 'contain' || fit === 'inside') hshrink = vshrink = Math.max(hshrink, vshrink);
  } else if (width !== null) {
    hshrink = size.width / width;
    if (fit !== 'fill') vshrink = hshrink;
  } else if (height !== null) {
    vshrink = size.height / height;
    if (fit !== 'fill') hshrink = vshrink;
  }
  if (!enlarge) {
    hshrink = Math.max(1, hshrink);
    vshrink = Math.max(1, vshrink);
  }
  hshrink = Math.min(hshrink, size.width);
  vshrink = Math.min(vshrink, size.height);
  // libvips rounds the resized image halves up; sharp's own target for a side not given, halves to even
  const resized = {
    width: Math.max(1, Math.floor(size.width / hshrink + 0.5)),
    height: Math.max(1, Math.floor(size.height / vshrink + 0.5)),
  };
  const target = {
    width: width ?? Math.max(1, roundHalfEven(size.width / hshrink)),
    height: height ?? Math.max(1, roundHalfEven(size.height / vshrink)),
  };
  // contain pads to the box; cover crops to it (never past what the resize gave)
  if (fit === 'contain') return { scaled: resized, output: target };
  if (fit === 'cover')
    return {
      scaled: resized,
      output: { width: Math.min(target.width, resized.width), height: Math.min(target.height, resized.height) },
    };
  return { scaled: resized, output: resized };
}

function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

const SIGMA = (description: string, fallback: number, max: number): Param => ({
  kind: 'number',
  min: 0.3,
  max,
  default: fallback,
  description,
});

const SIDE = (description: string, required = false): Param => ({
  kind: 'int',
  min: 1,
  max: MAX_SIDE,
  description,
  required,
});

export const OPERATION_SPECS: readonly OperationSpec[] = [
  {
    name: 'grayscale',
    description: 'Turns the image grey (luma of sRGB, as the course filter).',
    params: {},
    geometry: same,
  },
  {
    name: 'blur',
    description: 'Softens the image with a Gaussian blur.',
    params: { sigma: SIGMA('Gaussian sigma in pixels; the default is the course blur', COURSE_BLUR_SIGMA, 100) },
    geometry: same,
  },
  {
    name: 'sharpen',
    description: 'Sharpens edges (unsharp mask).',
    params: { sigma: SIGMA('sigma of the mask in pixels', 1, 10) },
    geometry: same,
  },
  {
    name: 'resize',
    description: 'Scales the image to a width and/or a height.',
    params: {
      width: SIDE('width in pixels (with height, a box; alone, the height follows the aspect ratio)'),
      height: SIDE('height in pixels (with width, a box; alone, the width follows the aspect ratio)'),
      fit: {
        kind: 'enum',
        values: FITS,
        default: 'cover',
        description:
          'with both sides: cover (fill the box, crop the rest), contain (fit inside, pad), inside, outside, ' +
          'fill (stretch)',
      },
      enlarge: { kind: 'bool', default: false, description: 'whether a smaller image may be scaled up' },
    },
    check: (step) =>
      step.op === 'resize' && step.width === null && step.height === null ? 'give "width", "height" or both' : null,
    geometry: (step, size) =>
      step.op === 'resize' ? resizedSize(size, step.width, step.height, step.fit, step.enlarge) : size,
  },
  {
    name: 'thumbnail',
    description: 'Fits the image inside a square box (never enlarges it).',
    params: { size: { kind: 'int', min: 1, max: 4096, default: 256, description: 'side of the box in pixels' } },
    geometry: (step, size) =>
      step.op === 'thumbnail' ? resizedSize(size, step.size, step.size, 'inside', false) : size,
  },
  {
    name: 'crop',
    description: 'Keeps a rectangle of the image; it must lie inside the image.',
    params: {
      left: { kind: 'int', min: 0, max: MAX_SIDE - 1, required: true, description: 'left edge, from 0' },
      top: { kind: 'int', min: 0, max: MAX_SIDE - 1, required: true, description: 'top edge, from 0' },
      width: SIDE('width of the rectangle', true),
      height: SIDE('height of the rectangle', true),
    },
    geometry: (step, size) => {
      if (step.op !== 'crop') return size;
      if (step.left + step.width > size.width || step.top + step.height > size.height)
        return (
          `the rectangle ${step.width}x${step.height} at (${step.left}, ${step.top}) does not lie inside the ` +
          `${size.width}x${size.height} image`
        );
      return { width: step.width, height: step.height };
    },
  },
  {
    name: 'rotate',
    description: 'Turns the image clockwise by a quarter, a half or three quarters.',
    params: { angle: { kind: 'enum', values: [90, 180, 270], required: true, description: 'degrees clockwise' } },
    geometry: (step, size) =>
      step.op === 'rotate' && step.angle !== 180 ? { width: size.height, height: size.width } : size,
  },
  {
    name: 'auto_orient',
    description: "Applies the image's EXIF orientation (both engines already do so when they read an image).",
    params: {},
    geometry: same,
  },
  { name: 'flip', description: 'Mirrors the image top to bottom.', params: {}, geometry: same },
  { name: 'flop', description: 'Mirrors the image left to right.', params: {}, geometry: same },
  {
    name: 'format',
    description: 'Encodes the result as PNG, JPEG, WebP or AVIF; without it the result keeps the input format.',
    lastOnly: true,
    params: {
      type: { kind: 'enum', values: OUTPUT_FORMATS, required: true, description: 'the output format' },
      quality: {
        kind: 'int',
        min: 1,
        max: 100,
        default: 80,
        description: 'quality of a lossy encoding (JPEG, WebP, AVIF); PNG is lossless',
      },
    },
    geometry: same,
  },
];

export function specOf(name: string): OperationSpec | undefined {
  return OPERATION_SPECS.find((spec) => spec.name === name);
}
