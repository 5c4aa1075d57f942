// The operations contract: a client's chain read with every default filled in, every mistake named with
// its step and what is allowed, and the sizes the chain makes, as sharp itself makes them.
import { expect } from 'chai';
import sharp from 'sharp';
import {
  chainGeometry,
  chainOfFilter,
  COURSE_BLUR_SIGMA,
  describeOperations,
  FITS,
  MAX_STEPS,
  parseChain,
  resizedSize,
  type Operation,
} from '../../common/operations/index.js';

function parsed(input: unknown): Operation[] {
  const result = parseChain(input);
  if (!result.ok) expect.fail(result.error);
  return result.chain;
}

function refused(input: unknown): string {
  const result = parseChain(input);
  if (result.ok) expect.fail(`accepted: ${JSON.stringify(result.chain)}`);
  return result.error;
}

describe('operations: reading a chain', () => {
  it('fills in every default', () => {
    expect(parsed([{ op: 'resize', width: 640 }, { op: 'grayscale' }, { op: 'format', type: 'webp' }])).to.deep.equal([
      { op: 'resize', width: 640, height: null, fit: 'cover', enlarge: false },
      { op: 'grayscale' },
      { op: 'format', type: 'webp', quality: 80 },
    ]);
    expect(chainOfFilter('blur')).to.deep.equal([{ op: 'blur', sigma: COURSE_BLUR_SIGMA }]);
    expect(parsed([{ op: 'thumbnail' }])).to.deep.equal([{ op: 'thumbnail', size: 256 }]);
  });

  it('names the step and what is allowed for every mistake', () => {
    const cases: [unknown, RegExp][] = [
      [{ op: 'grayscale' }, /must be a list/],
      [[], /at least one step/],
      [Array.from({ length: MAX_STEPS + 1 }, () => ({ op: 'flip' })), /at most 16 steps/],
      [[{ op: 'grayscale' }, { op: 'sepia' }], /^step 2: unknown operation "sepia": use one of grayscale, blur/],
      [[{ op: 'resize' }], /^step 1 \(resize\): give "width", "height" or both/],
      [[{ op: 'resize', width: 0 }], /^step 1 \(resize\): "width" must be a whole number from 1 to 16384/],
      [[{ op: 'resize', width: 10.5 }], /whole number/],
      [[{ op: 'resize', width: 10, fit: 'squash' }], /"fit" must be one of "cover", "contain"/],
      [[{ op: 'resize', width: 10, colour: 'red' }], /unknown parameter "colour": it takes "width", "height"/],
      [[{ op: 'flip', angle: 90 }], /^step 1 \(flip\): unknown parameter "angle": it takes none/],
      [[{ op: 'rotate', angle: 45 }], /"angle" must be one of 90, 180, 270/],
      [[{ op: 'rotate' }], /"angle" is required/],
      [[{ op: 'crop', left: 0, top: 0, width: 10 }], /"height" is required/],
      [[{ op: 'blur', sigma: 0 }], /"sigma" must be a number from 0.3 to 100/],
      [[{ op: 'blur', sigma: '2' }], /"sigma" must be a number/],
      [[{ op: 'format', type: 'gif' }], /"type" must be one of "png", "jpeg", "webp", "avif"/],
      [[{ op: 'format', type: 'png' }, { op: 'flip' }], /^step 1 \(format\): "format" may only be the last step/],
      [[{ op: 'format', type: 'jpeg', quality: 101 }], /"quality" must be a whole number from 1 to 100/],
      [['grayscale'], /^step 1 must be an object/],
      [[{ op: '__proto__' }], /unknown operation/],
    ];
    for (const [input, message] of cases) expect(refused(input), JSON.stringify(input)).to.match(message);
  });

  it('reads own fields only: an inherited "fit" is not a parameter', () => {
    const inherited = Object.create({ fit: 'fill' }) as Record<string, unknown>;
    Object.assign(inherited, { op: 'resize', width: 10 });
    expect(parsed([inherited])[0]).to.include({ fit: 'cover' });
    expect(refused(JSON.parse('[{"op":"resize","width":10,"__proto__":{"fit":"fill"}}]'))).to.match(
      /unknown parameter "__proto__"/,
    );
  });

  it('lists every operation with its parameters, ranges and defaults', () => {
    const listed = describeOperations();
    expect(listed.map((operation) => operation.op)).to.deep.equal([
      'grayscale',
      'blur',
      'sharpen',
      'resize',
      'thumbnail',
      'crop',
      'rotate',
      'auto_orient',
      'flip',
      'flop',
      'format',
    ]);
    const resize = listed.find((operation) => operation.op === 'resize');
    expect(resize?.params.find((param) => param.name === 'fit')).to.include({ type: 'enum', default: 'cover' });
    expect(resize?.params.find((param) => param.name === 'width')).to.include({ minimum: 1, maximum: 16384 });
    expect(listed.find((operation) => operation.op === 'format')).to.include({ last_only: true });
  });
});

describe('operations: the sizes a chain makes', () => {
  it('checks a crop against the image it will meet, and the pixel cap, naming the step', () => {
    const chain = parsed([
      { op: 'rotate', angle: 90 },
      { op: 'crop', left: 10, top: 0, width: 100, height: 50 },
    ]);
    expect(chainGeometry(chain, { width: 60, height: 200 })).to.deep.include({ output: { width: 100, height: 50 } });
    const outside = chainGeometry(chain, { width: 200, height: 60 });
    expect(outside).to.deep.equal({
      ok: false,
      error: 'step 2 (crop): the rectangle 100x50 at (10, 0) does not lie inside the 60x200 image',
    });
    const big = chainGeometry(
      parsed([{ op: 'resize', width: 10000, height: 10000, fit: 'fill', enlarge: true }]),
      {
        width: 10,
        height: 10,
      },
      50_000_000,
    );
    expect(big).to.deep.equal({
      ok: false,
      error: 'step 1 (resize) makes a 10000x10000 image, more than the 50000000 pixels allowed',
    });
  });

  it('resize gives exactly the dimensions sharp gives, for every fit, with and without enlarging', async () => {
    let seed = 7;
    const next = (limit: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 1 + (seed % limit);
    };
    const compared: string[] = [];
    for (let round = 0; round < 300; round++) {
      const input = { width: next(300), height: next(300) };
      const width = round % 5 === 1 ? null : next(400);
      const height = round % 5 === 2 ? null : next(400);
      const fit = FITS[next(FITS.length) - 1]!;
      const enlarge = round % 2 === 0;
      const image = sharp({ create: { ...input, channels: 3, background: { r: 200, g: 20, b: 20 } } });
      const { info } = await image
        .resize({ width: width ?? undefined, height: height ?? undefined, fit, withoutEnlargement: !enlarge })
        .png()
        .toBuffer({ resolveWithObject: true });
      const expected = { width: info.width, height: info.height };
      const label = `${input.width}x${input.height} -> ${width}x${height} ${fit} enlarge=${enlarge}`;
      expect(resizedSize(input, width, height, fit, enlarge), label).to.deep.equal(expected);
      compared.push(label);
    }
    expect(compared).to.have.length(300);
  });
});
