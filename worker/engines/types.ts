import type { FilterName } from '../../common/filters/index.js';

export type EngineChoice = 'auto' | 'sharp' | 'jimp';
export type EngineName = 'sharp' | 'jimp';
export type ImageMime = 'image/png' | 'image/jpeg';

export interface FilterResult {
  data: Buffer;
  mime: ImageMime;
  width: number;
  height: number;
}

export interface FilterEngine {
  readonly name: EngineName;
  /** Output format = input format. Rejects with UndecodableImageError for poison input. */
  apply(filter: FilterName, input: Buffer): Promise<FilterResult>;
  /** Releases the engine's threads; pending and later apply() calls reject. */
  close(): Promise<void>;
}
