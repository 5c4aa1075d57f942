import { imageSize } from 'image-size';
import type { OutputFormat, Size } from '../../common/operations/index.js';
import { UndecodableImageError } from './errors.js';
import type { ImageMime, OutputMime } from './types.js';

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

export const MIME_OF_FORMAT: Readonly<Record<OutputFormat, OutputMime>> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};

export const FORMAT_OF_MIME: Readonly<Record<ImageMime, OutputFormat>> = { 'image/png': 'png', 'image/jpeg': 'jpeg' };

/** What the header says, before anything is decoded. */
export interface ImageHeader {
  /** As stored. */
  width: number;
  height: number;
  /** EXIF orientation, 1 (as stored) to 8. */
  orientation: number;
  /** As shown: with the orientation applied (5 to 8 swap the sides), the size every step starts from. */
  oriented: Size;
}

/** The EXIF orientation of a PNG's eXIf chunk (sharp applies it; image-size reads JPEG's only), or 1. */
function pngOrientation(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 8; at + 8 <= data.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(data[at + 4]!, data[at + 5]!, data[at + 6]!, data[at + 7]!);
    if (type === 'IDAT' || type === 'IEND') return 1;
    if (type === 'eXIf' && at + 8 + length <= data.length)
      return tiffOrientation(data.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  return 1;
}

/** Tag 0x0112 of the first IFD of a TIFF structure (what an EXIF block is), or 1. */
function tiffOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return 1;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

/**
 * Reads the size and orientation from the header; throws UndecodableImageError when it cannot be read
 * (the API read the same header at upload, so a valid image always has one).
 */
export function readHeader(data: Uint8Array, mime: ImageMime): ImageHeader {
  let header: { width?: number; height?: number; orientation?: number };
  try {
    header = imageSize(data);
  } catch (error) {
    throw new UndecodableImageError(
      `could not decode image: its header is unreadable (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const { width, height } = header;
  if (!width || !height) throw new UndecodableImageError('could not decode image: its header has no dimensions');
  const found = mime === 'image/png' ? pngOrientation(data) : (header.orientation ?? 1);
  const orientation = found >= 1 && found <= 8 ? found : 1;
  const oriented = orientation >= 5 ? { width: height, height: width } : { width, height };
  return { width, height, orientation, oriented };
}

/**
 * Throws UndecodableImageError when the image's header gives it more than `maxPixels` pixels (the
 * API's --max-pixels): read from the header, before anything is decoded.
 */
export function checkPixels({ width, height }: ImageHeader, maxPixels: number): void {
  if (width * height > maxPixels)
    throw new UndecodableImageError(
      `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} (--max-pixels)`,
    );
}
