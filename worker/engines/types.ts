import type { FilterName } from '../../common/filters/index.js';
import type { Operation, OperationName, OutputFormat } from '../../common/operations/index.js';

export type EngineChoice = 'auto' | 'sharp' | 'jimp';
export type EngineName = 'sharp' | 'jimp';
/** The formats an original may have. */
export type ImageMime = 'image/png' | 'image/jpeg';
/** The formats a result may have. */
export type OutputMime = ImageMime | 'image/webp' | 'image/avif';

export interface FilterResult {
  data: Buffer;
  mime: OutputMime;
  width: number;
  height: number;
}

export interface ApplyOptions {
  /**
   * Abandons the work: run() rejects at once with the signal's reason. jimp terminates the thread that runs
   * it (a new one takes its place), which frees its memory; sharp's work on libuv's pool cannot be stopped
   * from outside, so its result is dropped when it comes (timeoutMs bounds it), and a chain's later steps
   * do not start.
   */
  signal?: AbortSignal;
  /** The time the work may take: sharp's libvips stops by itself after it (in whole seconds, rounded up). */
  timeoutMs?: number;
  /**
   * The largest image decoded, in pixels (the API's --max-pixels): a larger one is refused with
   * UndecodableImageError before its pixels are allocated, and a chain whose step would make a larger one
   * with ChainError. Absent: no limit.
   */
  maxPixels?: number;
}

/** What an engine can run: the operations, and the formats it can write (with `format`, or by keeping the input's). */
export interface EngineCapabilities {
  readonly operations: readonly OperationName[];
  readonly formats: readonly OutputFormat[];
}

export interface FilterEngine {
  readonly name: EngineName;
  readonly capabilities: EngineCapabilities;
  /**
   * Runs the chain: one decode, the steps in order, one encode. The output has the format of the chain's
   * `format` step, or else the input's. Rejects with UndecodableImageError for poison input, and with
   * ChainError, before decoding, for a chain that cannot apply to this image (a crop outside it, a step
   * over maxPixels) or that this engine cannot run.
   */
  run(chain: readonly Operation[], input: Buffer, options?: ApplyOptions): Promise<FilterResult>;
  /** A course filter: run() of its one-step chain. Output format = input format. */
  apply(filter: FilterName, input: Buffer, options?: ApplyOptions): Promise<FilterResult>;
  /** Releases the engine's threads; pending and later run() calls reject. */
  close(): Promise<void>;
}
