import { expect } from 'chai';
import { boxBlurRgba } from '../../common/filters/box-blur.js';

function image(width: number, height: number, fill: (x: number, y: number) => number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = data[i + 1] = data[i + 2] = fill(x, y);
      data[i + 3] = 255;
    }
  }
  return data;
}

describe("box blur (the jimp engine's blur)", () => {
  it('leaves a uniform image unchanged, alpha included', () => {
    const data = image(17, 9, () => 120);
    boxBlurRgba(data, 17, 9, 5, 2);
    for (let i = 0; i < data.length; i += 4)
      expect([data[i], data[i + 1], data[i + 2], data[i + 3]]).to.deep.equal([120, 120, 120, 255]);
  });

  it('spreads a bright dot evenly around it and keeps its total brightness', () => {
    const size = 41;
    const data = image(size, size, (x, y) => (x === 20 && y === 20 ? 255 : 0));
    boxBlurRgba(data, size, size, 3, 2);
    const at = (x: number, y: number): number => data[(y * size + x) * 4]!;
    let total = 0;
    for (let i = 0; i < data.length; i += 4) total += data[i]!;
    expect(total).to.be.within(200, 310); // rounding at each pass moves the sum a little
    expect(at(20, 20)).to.be.below(255);
    expect(at(20, 20)).to.be.at.least(at(23, 20));
    for (const [dx, dy] of [
      [3, 0],
      [0, 3],
      [2, 2],
    ] as const) {
      expect(at(20 + dx, 20 + dy)).to.equal(at(20 - dx, 20 - dy));
      expect(at(20 + dx, 20 + dy)).to.equal(at(20 + dy, 20 + dx));
    }
    expect(at(0, 0)).to.equal(0);
  });

  it('blurs a 1-pixel-wide image without reading outside it', () => {
    const data = image(1, 30, (_x, y) => (y % 2 === 0 ? 255 : 0));
    boxBlurRgba(data, 1, 30, 5, 2);
    for (let i = 4 * 8; i < data.length - 4 * 8; i += 4) expect(data[i]).to.be.within(100, 155);
  });

  it('matches a plain per-pixel window average (edges clamped), on random pixels of many shapes', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % 256;
    };
    for (const [width, height] of [
      [1, 1],
      [2, 3],
      [7, 13],
      [40, 4],
      [5, 40],
      [33, 27],
      [12, 6],
    ] as const) {
      for (const radius of [1, 3, 5]) {
        const data = Uint8Array.from({ length: width * height * 4 }, random);
        const expected = naiveBoxBlur(data, width, height, radius, 2);
        boxBlurRgba(data, width, height, radius, 2);
        expect(Buffer.from(data).equals(Buffer.from(expected)), `${width}x${height} radius ${radius}`).to.equal(true);
      }
    }
  });
});

/** The definition, computed the slow way: each output byte is the rounded mean of its clamped window. */
function naiveBoxBlur(input: Uint8Array, width: number, height: number, radius: number, passes: number): Uint8Array {
  let data = input.slice();
  const clamp = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  const window = 2 * radius + 1;
  for (let pass = 0; pass < passes; pass++) {
    for (const horizontal of [true, false]) {
      const out = new Uint8Array(data.length);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          for (let c = 0; c < 4; c++) {
            let sum = 0;
            for (let k = -radius; k <= radius; k++) {
              const sx = horizontal ? clamp(x + k, width - 1) : x;
              const sy = horizontal ? y : clamp(y + k, height - 1);
              sum += data[(sy * width + sx) * 4 + c]!;
            }
            out[(y * width + x) * 4 + c] = Math.round(sum / window);
          }
        }
      }
      data = out;
    }
  }
  return data;
}
