// The sharp engine lets libjpeg shrink a JPEG while decoding it, as a bare sharp pipeline does, and keeps
// the chain's exact sizes anyway: it asks sharp for both sides of every resize, which the shrink's
// rounding cannot change (sharp alone gives 900x601 resized to 200 wide as 200x133, the chain 200x134).
import { expect } from 'chai';
import sharp from 'sharp';
import { chainGeometry, parseChain, type Operation } from '../../common/operations/index.js';
import { createEngine } from '../../worker/engines/index.js';

function chain(steps: unknown[]): Operation[] {
  const parsed = parseChain(steps);
  if (!parsed.ok) expect.fail(parsed.error);
  return parsed.chain;
}

describe('sharp engine: shrink on load keeps the exact sizes', () => {
  it('gives the chain size where sharp alone would round a side otherwise, and where it would not', async () => {
    const engine = await createEngine('sharp', 1);
    try {
      const cases: [number, number, unknown[]][] = [
        [900, 601, [{ op: 'resize', width: 200 }]],
        [907, 999, [{ op: 'resize', width: 97 }, { op: 'grayscale' }]],
        [1920, 1080, [{ op: 'resize', width: 640 }, { op: 'grayscale' }, { op: 'format', type: 'webp' }]],
        [900, 777, [{ op: 'thumbnail', size: 200 }]],
      ];
      for (const [width, height, steps] of cases) {
        const input = await sharp({ create: { width, height, channels: 3, background: '#6a8' } })
          .jpeg()
          .toBuffer();
        const geometry = chainGeometry(chain(steps), { width, height });
        if (!geometry.ok) expect.fail(geometry.error);
        const result = await engine.run(chain(steps), input);
        const label = `${width}x${height} ${JSON.stringify(steps)}`;
        expect({ width: result.width, height: result.height }, label).to.deep.equal(geometry.output);
        const { width: w, height: h } = await sharp(result.data).metadata();
        expect({ width: w, height: h }, `${label}: as decoded`).to.deep.equal(geometry.output);
      }
    } finally {
      await engine.close();
    }
  });
});
