/**
 * Repeated box blur over RGBA pixels, in place, with edges clamped: two passes of radius r
 * approach a Gaussian (the blur jimp's own `blur(r)` computes). Typed arrays throughout: jimp's
 * implementation keeps four plain arrays of one number per pixel, about 400 MB for a 12-megapixel
 * image, where this needs one copy of the pixels.
 */
export function boxBlurRgba(data: Uint8Array, width: number, height: number, radius: number, passes: number): void {
  const scratch = new Uint8Array(data.length);
  for (let pass = 0; pass < passes; pass++) {
    // horizontal: data -> scratch; vertical: scratch -> data
    blurLines(data, scratch, height, width, width * 4, 4, radius);
    blurLines(scratch, data, width, height, 4, width * 4, radius);
  }
}

/**
 * Box-blurs `lines` lines of `length` pixels each from `source` into `target`: line k starts at
 * byte k * lineStep and its pixels are `pixelStep` bytes apart.
 */
function blurLines(source: Uint8Array, target: Uint8Array, lines: number, length: number, lineStep: number, pixelStep: number, radius: number): void {
  const window = 2 * radius + 1;
  const last = length - 1;
  for (let line = 0; line < lines; line++) {
    const start = line * lineStep;
    for (let channel = 0; channel < 4; channel++) {
      const base = start + channel;
      // the window around pixel 0, with the edge pixel standing in for what lies beyond it
      let sum = source[base]! * (radius + 1);
      for (let i = 1; i <= radius; i++) sum += source[base + Math.min(i, last) * pixelStep]!;
      for (let i = 0; i < length; i++) {
        target[base + i * pixelStep] = Math.round(sum / window);
        const entering = Math.min(i + radius + 1, last);
        const leaving = Math.max(i - radius, 0);
        sum += source[base + entering * pixelStep]! - source[base + leaving * pixelStep]!;
      }
    }
  }
}
