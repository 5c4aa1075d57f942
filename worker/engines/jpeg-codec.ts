// JPEG decode and encode for the jimp engine, with libjpeg-turbo built to WebAssembly.
// jimp's own codec (jpeg-js) keeps one typed array per 8x8 block while decoding and builds its
// output as an array of numbers: about 700 MB for 12 megapixels. This one works in one buffer.
import createLibJpegTurbo, { type LibJpegTurbo } from '@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs';

export interface RgbaImage {
  data: Buffer;
  width: number;
  height: number;
}

// libjpeg-turbo's TJSAMP values. 4:2:0 is what cameras and libjpeg's own defaults use; 4:4:4 would
// take 50% more of the codec's memory (160 MB instead of 110 MB for 12 megapixels) for detail in
// the colour that few eyes see.
const SUBSAMPLING_420 = 2;
const SUBSAMPLING_GREY = 3;

export interface JpegOptions {
  /** 1-100 */
  quality: number;
  /** Store one channel (the red one): for pixels known to have R = G = B. */
  grey: boolean;
}

let codec: Promise<LibJpegTurbo> | undefined;

function loadCodec(): Promise<LibJpegTurbo> {
  codec ??= createLibJpegTurbo();
  return codec;
}

/** Lets the codec's memory go (a WebAssembly memory only grows): the next call makes a new instance. */
export function releaseCodec(): void {
  codec = undefined;
}

/**
 * Runs `use` on the codec; after any failure the instance is dropped, since a trapped module may be left
 * inconsistent.
 */
async function withCodec<T>(use: (lib: LibJpegTurbo) => T): Promise<T> {
  const lib = await loadCodec();
  try {
    return use(lib);
  } catch (err) {
    codec = undefined;
    // The binding throws its C++ exceptions as bare numbers, without their text.
    throw err instanceof Error
      ? err
      : new Error('libjpeg-turbo refused it: corrupt, truncated or unsupported JPEG data');
  }
}

/** `allocate(bytes)` provides the buffer the RGBA pixels are written to (so a caller can reuse one). */
export function decodeJpeg(
  jpeg: Uint8Array,
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Promise<RgbaImage> {
  return withCodec((lib) => {
    const decoder = new lib.JPEGDecoder();
    try {
      decoder.getEncodedBuffer(jpeg.length).set(jpeg);
      decoder.decode();
      const { width, height, componentCount } = decoder.getFrameInfo();
      const pixels = decoder.getDecodedBuffer();
      if (componentCount !== 1 && componentCount !== 3)
        throw new Error(`unsupported JPEG with ${componentCount} components`);
      if (pixels.length !== width * height * componentCount) throw new Error('truncated JPEG decode');
      const rgba = allocate(width * height * 4);
      toRgba(pixels, componentCount === 1 ? 1 : 3, rgba);
      return { data: rgba, width, height };
    } finally {
      decoder.delete();
    }
  });
}

export function encodeJpeg({ data, width, height }: RgbaImage, { quality, grey }: JpegOptions): Promise<Buffer> {
  return withCodec((lib) => {
    const encoder = new lib.JPEGEncoder();
    try {
      const componentCount = grey ? 1 : 3;
      const samples = encoder.getDecodedBuffer({ width, height, bitsPerSample: 8, componentCount, isSigned: false });
      if (grey) {
        for (let src = 0, dst = 0; dst < samples.length; src += 4, dst += 1) samples[dst] = data[src]!;
      } else {
        for (let src = 0, dst = 0; dst < samples.length; src += 4, dst += 3) {
          samples[dst] = data[src]!;
          samples[dst + 1] = data[src + 1]!;
          samples[dst + 2] = data[src + 2]!;
        }
      }
      encoder.setQuality(quality);
      encoder.setSubSampling(grey ? SUBSAMPLING_GREY : SUBSAMPLING_420);
      encoder.encode();
      const encoded = encoder.getEncodedBuffer();
      // The binding hands out a copy; only a view into the module's memory would need copying.
      return encoded.byteLength === encoded.buffer.byteLength
        ? Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength)
        : Buffer.from(encoded);
    } finally {
      encoder.delete();
    }
  });
}

function toRgba(pixels: Uint8Array, componentCount: 1 | 3, rgba: Uint8Array): void {
  if (componentCount === 3) {
    for (let src = 0, dst = 0; dst < rgba.length; src += 3, dst += 4) {
      rgba[dst] = pixels[src]!;
      rgba[dst + 1] = pixels[src + 1]!;
      rgba[dst + 2] = pixels[src + 2]!;
      rgba[dst + 3] = 255;
    }
  } else {
    for (let src = 0, dst = 0; dst < rgba.length; src += 1, dst += 4) {
      const grey = pixels[src]!;
      rgba[dst] = grey;
      rgba[dst + 1] = grey;
      rgba[dst + 2] = grey;
      rgba[dst + 3] = 255;
    }
  }
}
