// Image helpers for tests: generate test patterns and inspect decoded pixels.
import { Jimp } from 'jimp';

export type TestImageMime = 'image/png' | 'image/jpeg';

/** Decoded pixels, 4 bytes (R, G, B, A) per pixel, row by row. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Deterministic PRNG (mulberry32) returning floats in [0, 1). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PALETTE: readonly (readonly [number, number, number])[] = [
  [230, 40, 40],
  [40, 200, 60],
  [40, 70, 230],
  [240, 220, 30],
  [220, 40, 220],
  [30, 210, 220],
];

/**
 * Encodes a colourful, high-frequency, opaque test pattern: vertical colour bands crossed by
 * 2-px diagonal stripes plus random noise. The same seed always gives the same pixels.
 */
export async function makeTestImage(width: number, height: number, mime: TestImageMime, seed = 1): Promise<Buffer> {
  const random = seededRandom(seed);
  const image = new Jimp({ width, height });
  const data = image.bitmap.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = PALETTE[Math.floor(x / 16) % PALETTE.length];
      const shade = (x + y) % 4 < 2 ? 1 : 0.45;
      const i = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        data[i + c] = Math.max(0, Math.min(255, Math.round(colour[c] * shade + (random() - 0.5) * 60)));
      }
      data[i + 3] = 255;
    }
  }
  return mime === 'image/png' ? image.getBuffer('image/png') : image.getBuffer('image/jpeg', { quality: 95 });
}

/**
 * Encodes a photo-like frame: smooth colour gradients, a few soft-edged discs and mild sensor
 * noise, at JPEG quality 90. Its size (about 0.4 MB at 1920x1080) is that of a camera frame, where
 * makeTestImage's noise is a worst case (about 3.5 MB). The same seed always gives the same pixels.
 */
export async function makePhotoLikeImage(width: number, height: number, seed = 1): Promise<Buffer> {
  const random = seededRandom(seed);
  const discs = Array.from({ length: 6 }, () => ({
    x: random() * width,
    y: random() * height,
    r: (0.08 + random() * 0.2) * Math.min(width, height),
    colour: PALETTE[Math.floor(random() * PALETTE.length)]!,
  }));
  const image = new Jimp({ width, height });
  const data = image.bitmap.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      let r = 40 + (150 * x) / width;
      let g = 60 + (120 * y) / height;
      let b = 170 - (100 * (x + y)) / (width + height);
      for (const disc of discs) {
        const distance = Math.hypot(x - disc.x, y - disc.y);
        const weight = Math.max(0, Math.min(1, (disc.r - distance) / 3)); // a 3-px soft edge
        r += (disc.colour[0] - r) * weight;
        g += (disc.colour[1] - g) * weight;
        b += (disc.colour[2] - b) * weight;
      }
      const noise = (random() - 0.5) * 8;
      data[i] = Math.max(0, Math.min(255, Math.round(r + noise)));
      data[i + 1] = Math.max(0, Math.min(255, Math.round(g + noise)));
      data[i + 2] = Math.max(0, Math.min(255, Math.round(b + noise)));
      data[i + 3] = 255;
    }
  }
  return image.getBuffer('image/jpeg', { quality: 90 });
}

/** Decodes a PNG or JPEG with jimp (grey images come back with R = G = B). */
export async function decodeRgba(buffer: Buffer): Promise<RgbaImage> {
  const { bitmap } = await Jimp.fromBuffer(buffer);
  return { width: bitmap.width, height: bitmap.height, data: bitmap.data };
}

/** The format according to the magic bytes, or undefined if neither PNG nor JPEG. */
export function sniffMime(buffer: Uint8Array): TestImageMime | undefined {
  if (buffer[0] === 0x89 && buffer[1] === 0x50 && buffer[2] === 0x4e && buffer[3] === 0x47) return 'image/png';
  if (buffer[0] === 0xff && buffer[1] === 0xd8 && buffer[2] === 0xff) return 'image/jpeg';
  return undefined;
}

/** The number of colour components a JPEG stores, read from its frame header (SOFn). */
export function jpegComponentCount(jpeg: Buffer): number {
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
    const marker = jpeg[at + 1]!;
    const length = jpeg.readUInt16BE(at + 2);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) return jpeg[at + 9]!;
    at += 2 + length;
  }
  throw new Error('no JPEG frame header found');
}

/** The largest max(R, G, B) - min(R, G, B) over all pixels: 0 for a perfectly grey image. */
export function maxChannelSpread(rgba: RgbaImage): number {
  let spread = 0;
  for (let i = 0; i < rgba.data.length; i += 4) {
    const r = rgba.data[i];
    const g = rgba.data[i + 1];
    const b = rgba.data[i + 2];
    spread = Math.max(spread, Math.max(r, g, b) - Math.min(r, g, b));
  }
  return spread;
}

/** True if every pixel has R, G and B within `tolerance` of each other. */
export function isGray(rgba: RgbaImage, tolerance = 0): boolean {
  return maxChannelSpread(rgba) <= tolerance;
}

/** Mean absolute difference between horizontally adjacent pixels over R, G and B; drops when blurred. */
export function highFrequencyEnergy(rgba: RgbaImage): number {
  const { width, height, data } = rgba;
  let sum = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 1; x < width; x++) {
      const i = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) sum += Math.abs(data[i + c] - data[i + c - 4]);
    }
  }
  return sum / (3 * height * Math.max(1, width - 1));
}

/**
 * A valid PNG signature and IHDR followed by bytes that are no PNG chunks: the API accepts it (it
 * reads the header only), every engine fails to decode it.
 */
export async function poisonPng(width = 64, height = 48, seed = 77): Promise<Buffer> {
  const png = await makeTestImage(width, height, 'image/png', seed);
  return Buffer.concat([png.subarray(0, 8 + 25), Buffer.alloc(2048, 0x5a)]);
}
