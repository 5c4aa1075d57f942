// Worker-thread script of the jimp engine: decodes, filters and encodes one image per message.
import { parentPort } from 'node:worker_threads';
import { Jimp } from 'jimp';
import { getFilter } from '../../common/filters/index.js';
import { ownedBytes, type JimpRequest, type JimpResponse } from './jimp-protocol.js';

const JPEG_QUALITY = 90;

const port = parentPort;
if (!port) throw new Error('jimp-thread must run in a worker thread');

async function handle({ filter, mime, data }: JimpRequest): Promise<JimpResponse> {
  let image;
  try {
    image = await Jimp.fromBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch (err) {
    return { ok: false, undecodable: true, message: `could not decode image: ${messageOf(err)}` };
  }
  try {
    getFilter(filter).jimp(image);
    const out =
      mime === 'image/png'
        ? await image.getBuffer('image/png')
        : await image.getBuffer('image/jpeg', { quality: JPEG_QUALITY });
    return { ok: true, data: ownedBytes(out), width: image.bitmap.width, height: image.bitmap.height };
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
  });
});
