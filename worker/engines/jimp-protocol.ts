// Messages between the jimp engine (main thread) and jimp-thread.js.
import type { Operation, OutputFormat } from '../../common/operations/index.js';
import type { ImageMime } from './types.js';

export interface JimpRequest {
  /** Checked against the image before it was sent: every step fits it. */
  chain: Operation[];
  mime: ImageMime;
  /** EXIF orientation from the header (1 to 8), applied after decoding as sharp does. */
  orientation: number;
  output: { format: OutputFormat; quality: number };
  data: Uint8Array<ArrayBuffer>;
}

export type JimpResponse =
  | { ok: true; data: Uint8Array<ArrayBuffer>; width: number; height: number }
  | { ok: false; undecodable: boolean; message: string };

/**
 * Returns the bytes as a Uint8Array that alone owns its ArrayBuffer, so the buffer can be
 * transferred. Copies when the bytes are a view into a larger (e.g. pooled) buffer.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const { buffer } = bytes;
  const owned = buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength;
  return owned ? new Uint8Array(buffer) : new Uint8Array(bytes);
}
