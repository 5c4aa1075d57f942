import { expect } from 'chai';
import { boxBlurRgba } from '../common/filters/box-blur.js';

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

describe('box blur (the jimp engine\'s blur)', () => {
  it('leaves a uniform image unchanged, alpha included', () => {
    const data = image(17, 9, () => 120);
    boxBlurRgba(data, 17, 9, 5, 2);
    for (let i = 0; i < data.length; i += 4) expect([data[i], data[i + 1], data[i + 2], data[i + 3]]).to.deep.equal([120, 120, 120, 255]);
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
    for (const [dx, dy] of [[3, 0], [0, 3], [2, 2]] as const) {
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
});
