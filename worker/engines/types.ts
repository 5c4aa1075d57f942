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

export interface ApplyOptions {
  /**
   * Abandons the work: apply() rejects at once with the signal's reason. jimp terminates the thread that runs
   * it (a new one takes its place), which frees its memory; sharp's work on libuv's pool cannot be stopped
   * from outside, so its result is dropped when it comes (timeoutMs bounds it).
   */
  signal?: AbortSignal;
  /** The time the work may take: sharp's libvips stops by itself after it (in whole seconds, rounded up). */
  timeoutMs?: number;
  /**
   * The largest image decoded, in pixels (the API's --max-pixels): a larger one is refused with
   * UndecodableImageError before its pixels are allocated. Absent: no limit.
   */
  maxPixels?: number;
}

export interface FilterEngine {
  readonly name: EngineName;
  /** Output format = input format. Rejects with UndecodableImageError for poison input. */
  apply(filter: FilterName, input: Buffer, options?: ApplyOptions): Promise<FilterResult>;
  /** Releases the engine's threads; pending and later apply() calls reject. */
  close(): Promise<void>;
}
