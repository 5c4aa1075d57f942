import type { Filter } from './types.js';

export default {
  name: 'grayscale',
  description: 'Converts the image to shades of grey (R = G = B).',
  jimp(image) {
    image.greyscale();
  },
  // Produces a single-channel (plus alpha, if any) image; decoders expand it to R = G = B.
  sharp(pipeline) {
    return pipeline.grayscale();
  },
} as const satisfies Filter;
