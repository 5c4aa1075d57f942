import { availableParallelism } from 'node:os';
import type { SharpOptions } from 'sharp';
import { getFilter, type FilterName } from '../../common/filters/index.js';
import { UndecodableImageError } from './errors.js';
import { detectFormat } from './format.js';
import type { ApplyOptions, FilterEngine, FilterResult } from './types.js';

const JPEG_QUALITY = 90;

// Reject corrupt/truncated input instead of returning a partially decoded image; apply EXIF orientation
// as jimp does. sharp's pixel limit is the API's --max-pixels (from the registration), per call.
function inputOptions(maxPixels: number | undefined): SharpOptions {
  return { failOn: 'error', limitInputPixels: maxPixels ?? false, autoOrient: true };
}

/** sharp's timeout is in whole seconds, up to an hour. */
const MAX_TIMEOUT_SECONDS = 3600;

/**
 * The work's outcome, or the signal's reason as soon as it aborts: the work itself goes on, and what it
 * settles with later is dropped.
 */
function abandonable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise((resolve, reject) => {
    const abandon = (): void => reject(signal.reason);
    if (signal.aborted) return abandon();
    signal.addEventListener('abort', abandon, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abandon));
  });
}

/** Throws if the 'sharp' module cannot be loaded. */
export async function createSharpEngine(concurrency: number): Promise<FilterEngine> {
  const sharp = (await import('sharp')).default;

  // sharp runs each job on a libuv thread and libvips splits it over sharp.concurrency()
  // threads; share the cores among the jobs that run at the same time.
  sharp.concurrency(Math.max(1, Math.floor(availableParallelism() / Math.max(1, concurrency))));

  /** Returns why the input cannot be decoded, or undefined if it can. */
  async function decodeError(input: Buffer, maxPixels: number | undefined): Promise<string | undefined> {
    try {
      await sharp(input, inputOptions(maxPixels)).raw().toBuffer();
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  let closed = false;
  return {
    name: 'sharp',
    async apply(
      filter: FilterName,
      input: Buffer,
      { signal, timeoutMs, maxPixels }: ApplyOptions = {},
    ): Promise<FilterResult> {
      if (closed) throw new Error('sharp engine is closed');
      signal?.throwIfAborted();
      const mime = detectFormat(input);
      const pipeline = getFilter(filter).sharp(sharp(input, inputOptions(maxPixels)));
      // libvips checks the time as it works and stops itself once it is up: work abandoned on a deadline
      // does not keep a libuv thread and its memory for long
      if (timeoutMs !== undefined)
        pipeline.timeout({ seconds: Math.min(MAX_TIMEOUT_SECONDS, Math.max(1, Math.ceil(timeoutMs / 1000))) });
      const encoder = mime === 'image/png' ? pipeline.png() : pipeline.jpeg({ quality: JPEG_QUALITY });
      try {
        const { data, info } = await abandonable(encoder.toBuffer({ resolveWithObject: true }), signal);
        return { data, mime, width: info.width, height: info.height };
      } catch (err) {
        // abandoned: the input is not in question
        if (signal?.aborted) throw err;
        // Only the error path pays for a separate decode, which tells poison input
        // apart from a failure that a retry might not repeat.
        const reason = await decodeError(input, maxPixels);
        if (reason === undefined) throw err;
        throw new UndecodableImageError(`could not decode image: ${reason}`);
      }
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
