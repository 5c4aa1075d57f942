import { lumaRgba } from './luma.js';
import type { Filter } from './types.js';

export default {
  name: 'grayscale',
  description: 'Converts the image to shades of grey (R = G = B).',
  greyOutput: true,
  rgba(bitmap) {
    lumaRgba(bitmap.data);
  },
  // Produces a single-channel (plus alpha, if any) image; decoders expand it to R = G = B.
  sharp(pipeline) {
    return pipeline.grayscale();
  },
} as const satisfies Filter;
