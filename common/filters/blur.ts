import { boxBlurRgba } from './box-blur.js';
import type { Filter } from './types.js';

const JIMP_RADIUS = 5;
const JIMP_PASSES = 2;

// two passes of a (2r+1)-wide box blur; the Gaussian sigma with the same variance
// (2 * ((2r+1)^2 - 1) / 12, ~4.5 for r = 5) makes both engines blur alike.
const SHARP_SIGMA = Math.sqrt((2 * ((2 * JIMP_RADIUS + 1) ** 2 - 1)) / 12);

export default {
  name: 'blur',
  description: `Softens the image with a Gaussian-like blur (sigma ~${SHARP_SIGMA.toFixed(1)} px).`,
  greyOutput: false,
  rgba({ data, width, height }) {
    boxBlurRgba(data, width, height, JIMP_RADIUS, JIMP_PASSES);
  },
  sharp(pipeline) {
    return pipeline.blur(SHARP_SIGMA);
  },
} as const satisfies Filter;
