// Moving pixels without changing them, over RGBA bitmaps: crop, mirrors, quarter turns, the EXIF
// orientations, and placing an image centred in a box. One pixel is one 32-bit word here: the moves
// copy words, whatever the byte order.
import type { RgbaBitmap } from './types.js';

/**
 * Where an operation that cannot work in place writes its result: `bytes` bytes that do not overlap
 * `busy` (the pixels being read). The jimp engine hands out buffers it reuses from job to job.
 */
export type Allocate = (bytes: number, busy: Uint8Array) => Uint8Array;

/** A new buffer each time. */
export const freshBuffer: Allocate = (bytes) => new Uint8Array(bytes);

/** The bitmap's pixels as words; a bitmap whose bytes do not start on a word boundary is copied first. */
function words(bitmap: RgbaBitmap): { bitmap: RgbaBitmap; pixels: Uint32Array } {
  let { data } = bitmap;
  if (data.byteOffset % 4 !== 0) data = new Uint8Array(data);
  return { bitmap: { ...bitmap, data }, pixels: new Uint32Array(data.buffer, data.byteOffset, data.length / 4) };
}

/** Keeps the rectangle, in place: each row moves to an earlier (or the same) place. */
export function cropRgba(bitmap: RgbaBitmap, left: number, top: number, width: number, height: number): RgbaBitmap {
  if (left < 0 || top < 0 || left + width > bitmap.width || top + height > bitmap.height || width < 1 || height < 1)
    throw new RangeError(
      `the rectangle ${width}x${height} at (${left}, ${top}) does not lie inside the ` +
        `${bitmap.width}x${bitmap.height} image`,
    );
  const { data } = bitmap;
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * bitmap.width + left) * 4;
    data.copyWithin(y * width * 4, from, from + width * 4);
  }
  return { data: data.subarray(0, width * height * 4), width, height };
}

/** Mirrors top to bottom, in place. */
export function flipRgba(bitmap: RgbaBitmap): RgbaBitmap {
  const { data, width, height } = bitmap;
  const stride = width * 4;
  const row = new Uint8Array(stride);
  for (let top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
    row.set(data.subarray(top * stride, top * stride + stride));
    data.copyWithin(top * stride, bottom * stride, bottom * stride + stride);
    data.set(row, bottom * stride);
  }
  return bitmap;
}

/** Mirrors left to right, in place. */
export function flopRgba(input: RgbaBitmap): RgbaBitmap {
  const { bitmap, pixels } = words(input);
  for (let y = 0; y < bitmap.height; y++) pixels.subarray(y * bitmap.width, (y + 1) * bitmap.width).reverse();
  return bitmap;
}

/** Turns the image clockwise by 90, 180 or 270 degrees; a half turn works in place. */
export function rotateRgba(input: RgbaBitmap, angle: 90 | 180 | 270, allocate: Allocate): RgbaBitmap {
  const { bitmap, pixels } = words(input);
  if (angle === 180) {
    pixels.reverse();
    return bitmap;
  }
  const { width, height } = bitmap;
  const out = allocate(width * height * 4, bitmap.data);
  const turned = words({ data: out, width: height, height: width });
  const target = turned.pixels;
  // walk the source row by row; the pixel (x, y) lands at (height - 1 - y, x) for 90, (y, width - 1 - x) for 270
  for (let y = 0; y < height; y++) {
    const row = y * width;
    if (angle === 90) {
      const column = height - 1 - y;
      for (let x = 0; x < width; x++) target[x * height + column] = pixels[row + x]!;
    } else {
      for (let x = 0; x < width; x++) target[(width - 1 - x) * height + y] = pixels[row + x]!;
    }
  }
  return turned.bitmap;
}

/**
 * Applies an EXIF orientation (1 to 8), as sharp's `autoOrient` does: the turn first, then the mirror.
 * 1 and unknown values leave the image as it is.
 */
export function orientRgba(bitmap: RgbaBitmap, orientation: number, allocate: Allocate): RgbaBitmap {
  const turns: Record<number, [0 | 90 | 180 | 270, boolean]> = {
    2: [0, true],
    3: [180, false],
    4: [180, true],
    5: [90, true],
    6: [90, false],
    7: [270, true],
    8: [270, false],
  };
  const turn = turns[orientation];
  if (!turn) return bitmap;
  const [angle, mirror] = turn;
  const turned = angle === 0 ? bitmap : rotateRgba(bitmap, angle, allocate);
  return mirror ? flopRgba(turned) : turned;
}

/**
 * The image centred in a `width` x `height` box, as sharp places a resized image: where the image is
 * larger it is cropped (from (size - box + 1) / 2), where it is smaller it is padded (at (box - size) / 2,
 * rounded down) with opaque black, sharp's default background.
 */
export function centreRgba(bitmap: RgbaBitmap, width: number, height: number, allocate: Allocate): RgbaBitmap {
  if (bitmap.width === width && bitmap.height === height) return bitmap;
  const cropLeft = Math.max(0, Math.floor((bitmap.width - width + 1) / 2));
  const cropTop = Math.max(0, Math.floor((bitmap.height - height + 1) / 2));
  if (bitmap.width >= width && bitmap.height >= height) return cropRgba(bitmap, cropLeft, cropTop, width, height);
  const padLeft = Math.max(0, Math.trunc((width - bitmap.width) / 2));
  const padTop = Math.max(0, Math.trunc((height - bitmap.height) / 2));
  const out = allocate(width * height * 4, bitmap.data);
  const black = new Uint8Array([0, 0, 0, 255]);
  const box = words({ data: out, width, height });
  box.pixels.fill(new Uint32Array(black.buffer)[0]!);
  const source = words(bitmap);
  const columns = Math.min(width, bitmap.width);
  const rows = Math.min(height, bitmap.height);
  for (let y = 0; y < rows; y++) {
    const from = (cropTop + y) * bitmap.width + cropLeft;
    box.pixels.set(source.pixels.subarray(from, from + columns), (padTop + y) * width + padLeft);
  }
  return box.bitmap;
}
