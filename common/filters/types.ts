// Type-only imports: loading the filter registry must never load jimp or sharp.
import type { Jimp } from 'jimp';
import type { Sharp } from 'sharp';

// jimp's JimpInstance type is not assignable from what Jimp.fromBuffer() returns, so use the latter.
export type JimpImage = Awaited<ReturnType<typeof Jimp.fromBuffer>>;
export type SharpPipeline = Sharp;

export interface Filter {
  readonly name: string;
  readonly description: string;
  /** Mutates a decoded jimp image in place. */
  jimp(image: JimpImage): void;
  /** Appends the filter's operation to a sharp pipeline. */
  sharp(pipeline: SharpPipeline): SharpPipeline;
}
