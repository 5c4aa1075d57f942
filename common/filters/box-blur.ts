/**
 * Repeated box blur over RGBA pixels, in place, with edges clamped: two passes of radius r
 * approach a Gaussian (the blur jimp's own `blur(r)` computes). It works in place with a few rows
 * of extra memory (jimp's own keeps four plain arrays of one number per pixel, about 400 MB for 12
 * megapixels), and both directions walk memory row by row, which keeps the caches warm.
 */
export function boxBlurRgba(data: Uint8Array, width: number, height: number, radius: number, passes: number): void {
  const average = averageTable(radius);
  for (let pass = 0; pass < passes; pass++) {
    blurRows(data, width, height, radius, average);
    blurColumns(data, width, height, radius, average);
  }
}

/** average[sum] = the window's mean, rounded: a lookup instead of a division per byte. */
function averageTable(radius: number): Uint8Array {
  const window = 2 * radius + 1;
  const table = new Uint8Array(255 * window + 1);
  for (let sum = 0; sum < table.length; sum++) table[sum] = Math.round(sum / window);
  return table;
}

function blurRows(data: Uint8Array, width: number, height: number, radius: number, average: Uint8Array): void {
  const stride = width * 4;
  const last = width - 1;
  const source = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    source.set(data.subarray(row, row + stride));
    // the window around pixel 0, with the edge pixel standing in for what lies beyond it
    let r = source[0]! * (radius + 1);
    let g = source[1]! * (radius + 1);
    let b = source[2]! * (radius + 1);
    let a = source[3]! * (radius + 1);
    for (let i = 1; i <= radius; i++) {
      const at = Math.min(i, last) * 4;
      r += source[at]!;
      g += source[at + 1]!;
      b += source[at + 2]!;
      a += source[at + 3]!;
    }
    for (let x = 0; x < width; x++) {
      const out = row + x * 4;
      data[out] = average[r]!;
      data[out + 1] = average[g]!;
      data[out + 2] = average[b]!;
      data[out + 3] = average[a]!;
      const entering = Math.min(x + radius + 1, last) * 4;
      const leaving = Math.max(x - radius, 0) * 4;
      r += source[entering]! - source[leaving]!;
      g += source[entering + 1]! - source[leaving + 1]!;
      b += source[entering + 2]! - source[leaving + 2]!;
      a += source[entering + 3]! - source[leaving + 3]!;
    }
  }
}

/**
 * Keeps one running sum per byte of a row and moves the window down a row at a time. Rows below
 * the one being written are still unfiltered; the radius + 1 unfiltered rows above it that the
 * window still needs are kept in a ring.
 */
function blurColumns(data: Uint8Array, width: number, height: number, radius: number, average: Uint8Array): void {
  const stride = width * 4;
  const last = height - 1;
  const sums = new Int32Array(stride);
  const ring = new Uint8Array(stride * (radius + 1));
  for (let i = 0; i < stride; i++) sums[i] = data[i]! * (radius + 1);
  for (let k = 1; k <= radius; k++) {
    const row = Math.min(k, last) * stride;
    for (let i = 0; i < stride; i++) sums[i]! += data[row + i]!;
  }
  for (let y = 0; y < last; y++) {
    const out = y * stride;
    ring.set(data.subarray(out, out + stride), (y % (radius + 1)) * stride);
    // the entering row lies below row y, so writing row y first leaves it unfiltered
    const entering = Math.min(y + radius + 1, last) * stride;
    const leaving = (Math.max(y - radius, 0) % (radius + 1)) * stride;
    for (let i = 0; i < stride; i++) {
      const sum = sums[i]!;
      data[out + i] = average[sum]!;
      sums[i] = sum + data[entering + i]! - ring[leaving + i]!;
    }
  }
  const out = last * stride;
  for (let i = 0; i < stride; i++) data[out + i] = average[sums[i]!]!;
}
