import { imageSize } from 'image-size';
import { UndecodableImageError } from './errors.js';
import type { ImageMime } from './types.js';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(data: Uint8Array, magic: readonly number[]): boolean {
  return data.length >= magic.length && magic.every((byte, i) => data[i] === byte);
}

/** Detects the image format from its magic bytes; throws UndecodableImageError for anything else. */
export function detectFormat(data: Uint8Array): ImageMime {
  if (startsWith(data, PNG_MAGIC)) return 'image/png';
  if (startsWith(data, JPEG_MAGIC)) return 'image/jpeg';
  throw new UndecodableImageError('unsupported image format');
}

/**
 * Throws UndecodableImageError when the image's header gives it more than `maxPixels` pixels (the
 * API's --max-pixels), or gives no dimensions: read from the header, before anything is decoded.
 */
export function checkPixels(data: Uint8Array, maxPixels: number): void {
  let size: { width?: number; height?: number };
  try {
    size = imageSize(data);
  } catch (error) {
    throw new UndecodableImageError(
      `could not read the image header: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const { width, height } = size;
  if (!width || !height) throw new UndecodableImageError('the image header has no dimensions');
  if (width * height > maxPixels)
    throw new UndecodableImageError(
      `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} (--max-pixels)`,
    );
}
