// Type-only import: loading the filter registry must never load sharp.
import type { Sharp } from 'sharp';

export type SharpPipeline = Sharp;

/** Decoded pixels, 4 bytes per pixel (R, G, B, A), rows top to bottom: what the jimp engine filters. */
export interface RgbaBitmap {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Filter {
  readonly name: string;
  readonly description: string;
  /** True when every output pixel has R = G = B, so an encoder may store one channel. */
  readonly greyOutput: boolean;
  /** Filters decoded pixels in place (the jimp engine). */
  rgba(bitmap: RgbaBitmap): void;
  /** Appends the filter's operation to a sharp pipeline. */
  sharp(pipeline: SharpPipeline): SharpPipeline;
}
