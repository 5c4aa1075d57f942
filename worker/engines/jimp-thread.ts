// Worker-thread script of the jimp engine: decodes, filters and encodes one image per message.
// PNG goes through jimp's codec; JPEG through libjpeg-turbo (see jpeg-codec.ts).
import { parentPort } from 'node:worker_threads';
import { getFilter } from '../../common/filters/index.js';
import type { RgbaBitmap } from '../../common/filters/types.js';
import { decodeJpeg, encodeJpeg, releaseCodec } from './jpeg-codec.js';
import { ownedBytes, type JimpRequest, type JimpResponse } from './jimp-protocol.js';
import type { ImageMime } from './types.js';

const JPEG_QUALITY = 90;

const port = parentPort;
if (!port) throw new Error('jimp-thread must run in a worker thread');

interface Codec {
  decode(bytes: Buffer): Promise<RgbaBitmap & { data: Buffer }>;
  encode(bitmap: RgbaBitmap & { data: Buffer }, grey: boolean): Promise<Buffer>;
}

/**
 * One pixel buffer per thread, grown to the largest image seen and reused: a 12-megapixel image
 * needs 48 MB, and a fresh buffer per job would wait for the garbage collector, each job adding
 * its own to the peak.
 */
class ReusedBuffer {
  private buffer = Buffer.alloc(0);
  take(bytes: number): Buffer {
    if (this.buffer.length < bytes) this.buffer = Buffer.allocUnsafeSlow(bytes);
    return this.buffer.subarray(0, bytes);
  }
  release(): void {
    this.buffer = Buffer.alloc(0);
  }
}
const pixels = new ReusedBuffer();

/**
 * After an image over this size the thread lets its pixel buffer and the codec's memory go, so that
 * one 50-megapixel upload does not leave 400 MB held per thread for good. Up to it (a 24-megapixel
 * camera frame: 96 MB of pixels), they are kept for the next image.
 */
const KEPT_PIXELS = 24_000_000;

// jimp (all its plugins and formats: 30 MB per thread) is loaded only when a PNG comes.
const loadJimp = async () => (await import('jimp')).Jimp;

const CODECS: Record<ImageMime, Codec> = {
  'image/jpeg': {
    decode: (bytes) => decodeJpeg(bytes, (size) => pixels.take(size)),
    encode: (bitmap, grey) => encodeJpeg(bitmap, { quality: JPEG_QUALITY, grey }),
  },
  'image/png': {
    decode: async (bytes) => (await (await loadJimp()).fromBuffer(bytes)).bitmap,
    encode: async (bitmap) => new (await loadJimp())(bitmap).getBuffer('image/png'),
  },
};

async function handle({ filter, mime, data }: JimpRequest): Promise<JimpResponse> {
  const codec = CODECS[mime];
  let bitmap: Awaited<ReturnType<typeof codec.decode>>;
  try {
    bitmap = await codec.decode(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch (err) {
    return { ok: false, undecodable: true, message: `could not decode image: ${messageOf(err)}` };
  }
  try {
    const { rgba, greyOutput } = getFilter(filter);
    rgba(bitmap);
    const out = await codec.encode(bitmap, greyOutput);
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
    if (response.ok && response.width * response.height > KEPT_PIXELS) {
      pixels.release();
      releaseCodec();
    }
  });
});
