// Worker-thread script of the jimp engine: decodes one image per message, runs its chain of operations
// over the RGBA pixels, and encodes the result. PNG goes through jimp's codec; JPEG through
// libjpeg-turbo (see jpeg-codec.ts).
import { parentPort } from 'node:worker_threads';
import { orientRgba, type Allocate } from '../../common/filters/geometry.js';
import { runChainRgba } from '../../common/filters/rgba-chain.js';
import type { RgbaBitmap } from '../../common/filters/types.js';
import { decodeJpeg, encodeJpeg, releaseCodec } from './jpeg-codec.js';
import { ownedBytes, type JimpRequest, type JimpResponse } from './jimp-protocol.js';

const port = parentPort;
if (!port) throw new Error('jimp-thread must run in a worker thread');

/**
 * A pixel buffer, grown to the largest image seen and reused: a 12-megapixel image needs 48 MB, and a
 * fresh buffer per job would wait for the garbage collector, each job adding its own to the peak.
 */
class ReusedBuffer {
  private buffer = Buffer.alloc(0);
  take(bytes: number): Buffer {
    if (this.buffer.length < bytes) this.buffer = Buffer.allocUnsafeSlow(bytes);
    return this.buffer.subarray(0, bytes);
  }
  holds(view: Uint8Array): boolean {
    return view.buffer === this.buffer.buffer;
  }
  release(): void {
    this.buffer = Buffer.alloc(0);
  }
}
/**
 * Two, used in turn: a step that changes the size (resize, a quarter turn) reads one and writes the
 * other. JPEG decodes into the first; jimp's PNG decoder makes its own.
 */
const buffers = [new ReusedBuffer(), new ReusedBuffer()] as const;

/** The most bytes of pixels the current job has held at once, in one buffer. */
let largest = 0;

const allocate: Allocate = (bytes, busy) => {
  largest = Math.max(largest, bytes);
  return buffers[0].holds(busy) ? buffers[1].take(bytes) : buffers[0].take(bytes);
};

/**
 * After an image over this size the thread lets its pixel buffers and the codec's memory go, so that
 * one 50-megapixel upload does not leave 400 MB held per thread for good. Up to it (a 24-megapixel
 * camera frame: 96 MB of pixels), they are kept for the next image.
 */
const KEPT_PIXELS = 24_000_000;

// jimp (all its plugins and formats: 30 MB per thread) is loaded only when a PNG comes.
const loadJimp = async () => (await import('jimp')).Jimp;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** JPEG has no alpha: what is transparent is laid on black, as sharp (libvips) does. */
function flattenOnBlack(data: Uint8Array): void {
  for (let i = 3; i < data.length; i += 4) {
    const alpha = data[i]!;
    if (alpha === 255) continue;
    data[i - 3] = Math.round((data[i - 3]! * alpha) / 255);
    data[i - 2] = Math.round((data[i - 2]! * alpha) / 255);
    data[i - 1] = Math.round((data[i - 1]! * alpha) / 255);
    data[i] = 255;
  }
}

async function decode(mime: JimpRequest['mime'], bytes: Buffer): Promise<RgbaBitmap> {
  if (mime === 'image/jpeg') return decodeJpeg(bytes, (size) => buffers[0].take(size));
  const { bitmap } = await (await loadJimp()).fromBuffer(bytes);
  return bitmap;
}

async function encode(bitmap: RgbaBitmap, grey: boolean, output: JimpRequest['output']): Promise<Buffer> {
  const image = { data: asBuffer(bitmap.data), width: bitmap.width, height: bitmap.height };
  switch (output.format) {
    case 'png':
      return new (await loadJimp())(image).getBuffer('image/png');
    case 'jpeg':
      flattenOnBlack(image.data);
      return encodeJpeg(image, { quality: output.quality, grey });
    default:
      // the engine's capabilities leave these out: the main thread refuses such a chain before sending it
      throw new Error(`this engine cannot encode ${output.format}`);
  }
}

async function handle({ chain, mime, orientation, output, data }: JimpRequest): Promise<JimpResponse> {
  let decoded: RgbaBitmap;
  try {
    decoded = await decode(mime, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch (err) {
    return { ok: false, undecodable: true, message: `could not decode image: ${messageOf(err)}` };
  }
  try {
    largest = decoded.data.length;
    const { bitmap, grey } = runChainRgba(orientRgba(decoded, orientation, allocate), chain, allocate);
    const out = await encode(bitmap, grey, output);
    return { ok: true, data: ownedBytes(out), width: bitmap.width, height: bitmap.height };
  } catch (err) {
    return { ok: false, undecodable: false, message: messageOf(err) };
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

port.on('message', (request: JimpRequest) => {
  void handle(request).then((response) => {
    port.postMessage(response, response.ok ? [response.data.buffer] : []);
    if (largest > KEPT_PIXELS * 4) {
      for (const buffer of buffers) buffer.release();
      releaseCodec();
    }
    largest = 0;
  });
});
