import { availableParallelism } from 'node:os';
import type { SharpOptions } from 'sharp';
import { getFilter, type FilterName } from '../../common/filters/index.js';
import { UndecodableImageError } from './errors.js';
import { detectFormat } from './format.js';
import type { FilterEngine, FilterResult } from './types.js';

const JPEG_QUALITY = 90;

// Reject corrupt/truncated input instead of returning a partially decoded image; the API
// enforces its own pixel limit, so sharp's is off; apply EXIF orientation as jimp does.
const INPUT_OPTIONS: SharpOptions = { failOn: 'error', limitInputPixels: false, autoOrient: true };

/** Throws if the 'sharp' module cannot be loaded. */
export async function createSharpEngine(concurrency: number): Promise<FilterEngine> {
  const sharp = (await import('sharp')).default;

  // sharp runs each job on a libuv thread and libvips splits it over sharp.concurrency()
  // threads; share the cores among the jobs that run at the same time.
  sharp.concurrency(Math.max(1, Math.floor(availableParallelism() / Math.max(1, concurrency))));

  /** Returns why the input cannot be decoded, or undefined if it can. */
  async function decodeError(input: Buffer): Promise<string | undefined> {
    try {
      await sharp(input, INPUT_OPTIONS).raw().toBuffer();
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  let closed = false;
  return {
    name: 'sharp',
    async apply(filter: FilterName, input: Buffer): Promise<FilterResult> {
      if (closed) throw new Error('sharp engine is closed');
      const mime = detectFormat(input);
      const pipeline = getFilter(filter).sharp(sharp(input, INPUT_OPTIONS));
      const encoder = mime === 'image/png' ? pipeline.png() : pipeline.jpeg({ quality: JPEG_QUALITY });
      try {
        const { data, info } = await encoder.toBuffer({ resolveWithObject: true });
        return { data, mime, width: info.width, height: info.height };
      } catch (err) {
        // Only the error path pays for a separate decode, which tells poison input
        // apart from a failure that a retry might not repeat.
        const reason = await decodeError(input);
        if (reason === undefined) throw err;
        throw new UndecodableImageError(`could not decode image: ${reason}`);
      }
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
