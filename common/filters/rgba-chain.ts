// A chain of operations over decoded RGBA pixels: the jimp engine's work between one decode and one
// encode. Sizes follow common/operations (resizedSize), so they are sharp's to the pixel.
import { resizedSize, type Fit, type Operation, type Size } from '../operations/index.js';
import { blurRgba } from './blur.js';
import { centreRgba, cropRgba, flipRgba, flopRgba, freshBuffer, rotateRgba, type Allocate } from './geometry.js';
import grayscale from './grayscale.js';
import { resampleRgba } from './resample.js';
import { sharpenRgba } from './sharpen.js';
import type { RgbaBitmap } from './types.js';

export interface RgbaChainResult {
  bitmap: RgbaBitmap;
  /** Every pixel has R = G = B (the chain turned it grey), so an encoder may store one channel. */
  grey: boolean;
}

/**
 * The size the image is scaled to before cover crops it to the box, or contain pads it: scaled as
 * `outside` (cover) or `inside` (contain) would, which is the size sharp scales to for them.
 */
function scaledSize(size: Size, width: number | null, height: number | null, fit: Fit, enlarge: boolean): Size {
  if (fit === 'cover' && width !== null && height !== null) return resizedSize(size, width, height, 'outside', enlarge);
  if (fit === 'cover' || fit === 'contain') return resizedSize(size, width, height, 'inside', enlarge);
  return resizedSize(size, width, height, fit, enlarge);
}

export function resizeRgba(
  bitmap: RgbaBitmap,
  width: number | null,
  height: number | null,
  fit: Fit,
  enlarge: boolean,
  allocate: Allocate,
): RgbaBitmap {
  const box = resizedSize(bitmap, width, height, fit, enlarge);
  const scaled = scaledSize(bitmap, width, height, fit, enlarge);
  return centreRgba(resampleRgba(bitmap, scaled.width, scaled.height, allocate), box.width, box.height, allocate);
}

/**
 * Runs the chain's steps in order. Steps that keep the size work in place; the others write into
 * `allocate`'s buffers. `format` is the encoder's business and `auto_orient` was done at decoding, as
 * sharp does: both leave the pixels as they are. Throws RangeError for a crop outside the image (the
 * engines check the chain's geometry before decoding, so it does not come to that).
 */
export function runChainRgba(
  input: RgbaBitmap,
  chain: readonly Operation[],
  allocate: Allocate = freshBuffer,
): RgbaChainResult {
  let bitmap = input;
  let grey = false;
  for (const step of chain) {
    switch (step.op) {
      case 'grayscale':
        grayscale.rgba(bitmap);
        grey = true;
        break;
      case 'blur':
        blurRgba(bitmap, step.sigma);
        break;
      case 'sharpen':
        sharpenRgba(bitmap, step.sigma, grey);
        break;
      case 'resize':
        bitmap = resizeRgba(bitmap, step.width, step.height, step.fit, step.enlarge, allocate);
        break;
      case 'thumbnail':
        bitmap = resizeRgba(bitmap, step.size, step.size, 'inside', false, allocate);
        break;
      case 'crop':
        bitmap = cropRgba(bitmap, step.left, step.top, step.width, step.height);
        break;
      case 'rotate':
        bitmap = rotateRgba(bitmap, step.angle, allocate);
        break;
      case 'flip':
        bitmap = flipRgba(bitmap);
        break;
      case 'flop':
        bitmap = flopRgba(bitmap);
        break;
      case 'auto_orient':
      case 'format':
        break;
      default: {
        const unknown: never = step;
        throw new Error(`unknown operation ${JSON.stringify(unknown)}`);
      }
    }
  }
  return { bitmap, grey };
}
