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
