import { COURSE_BLUR_SIGMA } from '../operations/index.js';
import { boxBlurRgba } from './box-blur.js';
import type { Filter, RgbaBitmap } from './types.js';

const PASSES = 2;

/**
 * The radius of the box whose two passes have the variance of a Gaussian of `sigma`: two passes of a
 * (2r+1)-wide box have 2 r (r + 1) / 3; the course's sigma (~4.47) gives r = 5. 0 for a sigma too small
 * to move a pixel.
 */
export function boxRadiusForSigma(sigma: number): number {
  return Math.round((Math.sqrt(6 * sigma * sigma + 1) - 1) / 2);
}

/** Two passes of the box blur whose variance matches `sigma`, in place (the jimp engine's blur). */
export function blurRgba({ data, width, height }: RgbaBitmap, sigma: number): void {
  const radius = boxRadiusForSigma(sigma);
  if (radius > 0) boxBlurRgba(data, width, height, radius, PASSES);
}

export default {
  name: 'blur',
  description: `Softens the image with a Gaussian-like blur (sigma ~${COURSE_BLUR_SIGMA.toFixed(1)} px).`,
  greyOutput: false,
  rgba(bitmap) {
    blurRgba(bitmap, COURSE_BLUR_SIGMA);
  },
  // sharp blurs with the Gaussian of the same variance, so both engines blur alike
  sharp(pipeline) {
    return pipeline.blur(COURSE_BLUR_SIGMA);
  },
} as const satisfies Filter;
