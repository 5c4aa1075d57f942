import { availableParallelism } from 'node:os';
import type { Sharp, SharpOptions } from 'sharp';
import { FILTERS, type FilterName } from '../../common/filters/index.js';
import {
  chainOfFilter,
  OPERATION_SPECS,
  OUTPUT_FORMATS,
  resizePlan,
  type Fit,
  type Operation,
  type OutputFormat,
  type Size,
} from '../../common/operations/index.js';
import { UndecodableImageError } from './errors.js';
import { planChain } from './plan.js';
import { greySmallPng } from './small-grey.js';
import type { ApplyOptions, EngineCapabilities, FilterEngine, FilterResult } from './types.js';

// Reject corrupt/truncated input instead of returning a partially decoded image; apply EXIF orientation
// (the jimp engine does the same). sharp's pixel limit is the API's --max-pixels (from the registration), per call.
function inputOptions(maxPixels: number | undefined): SharpOptions {
  return { failOn: 'error', limitInputPixels: maxPixels ?? false, autoOrient: true };
}

/** sharp's timeout is in whole seconds, up to an hour. */
const MAX_TIMEOUT_SECONDS = 3600;

/** Every operation, every format. */
export const SHARP_CAPABILITIES: EngineCapabilities = Object.freeze({
  operations: Object.freeze(OPERATION_SPECS.map((spec) => spec.name)),
  formats: OUTPUT_FORMATS,
});

/**
 * The work's outcome, or the signal's reason as soon as it aborts: the work itself goes on, and what it
 * settles with later is dropped.
 */
function abandonable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise((resolve, reject) => {
    const abandon = (): void => reject(signal.reason);
    if (signal.aborted) return abandon();
    signal.addEventListener('abort', abandon, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abandon));
  });
}

/**
 * One step on a sharp pipeline, sizes exact (see resizeExactly).
 * The input was oriented when read, so `auto_orient` adds nothing, and sharp turns, mirrors and crops
 * after that orientation whatever the order of the calls.
 */
function addStep(pipeline: Sharp, step: Operation, before: Size | undefined): Sharp {
  switch (step.op) {
    case 'grayscale':
      return FILTERS.grayscale.sharp(pipeline);
    case 'blur':
      return pipeline.blur(step.sigma);
    case 'sharpen':
      return pipeline.sharpen({ sigma: step.sigma });
    case 'resize':
      return resizeExactly(pipeline, before, step.width, step.height, step.fit, step.enlarge);
    case 'thumbnail':
      return resizeExactly(pipeline, before, step.size, step.size, 'inside', false);
    case 'crop':
      return pipeline.extract({ left: step.left, top: step.top, width: step.width, height: step.height });
    case 'rotate':
      return pipeline.rotate(step.angle);
    case 'flip':
      return pipeline.flip();
    case 'flop':
      return pipeline.flop();
    case 'auto_orient':
    case 'format':
      return pipeline;
    default: {
      const unknown: never = step;
      throw new Error(`unknown operation ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * A resize to the chain's sizes to the pixel, whatever the decoder's shrink on load rounds: the image is
 * scaled to exactly the size the chain computes, then cropped to the box (cover) or padded to it with
 * opaque black (contain), centred as sharp centres them. `before` is the size the step meets. So libjpeg
 * may shrink a JPEG while decoding it (two to eight times less to decode and scale), as a bare sharp
 * pipeline lets it: with exact sides asked for, its rounding cannot change them.
 */
function resizeExactly(
  pipeline: Sharp,
  before: Size | undefined,
  width: number | null,
  height: number | null,
  fit: Fit,
  enlarge: boolean,
): Sharp {
  if (!before) throw new Error('a resize step without the size it meets');
  const { scaled, output } = resizePlan(before, width, height, fit, enlarge);
  let resized =
    scaled.width === before.width && scaled.height === before.height
      ? pipeline
      : pipeline.resize({ width: scaled.width, height: scaled.height, fit: 'fill' });
  if (output.width === scaled.width && output.height === scaled.height) return resized;
  const cropLeft = Math.max(0, Math.floor((scaled.width - output.width + 1) / 2));
  const cropTop = Math.max(0, Math.floor((scaled.height - output.height + 1) / 2));
  const kept = { width: Math.min(scaled.width, output.width), height: Math.min(scaled.height, output.height) };
  if (kept.width < scaled.width || kept.height < scaled.height)
    resized = resized.extract({ left: cropLeft, top: cropTop, ...kept });
  if (kept.width === output.width && kept.height === output.height) return resized;
  const left = Math.trunc((output.width - kept.width) / 2);
  const top = Math.trunc((output.height - kept.height) / 2);
  return resized.extend({
    left,
    top,
    right: output.width - kept.width - left,
    bottom: output.height - kept.height - top,
    background: { r: 0, g: 0, b: 0, alpha: 1 },
  });
}

/**
 * The pipelines a chain runs as, each with its steps (none: decode only). A grayscale step that is not the
 * last reads raw pixels, so that it has their alpha to give back: a chain that starts with one decodes
 * first. A resize (or thumbnail) followed by a last grayscale is one pipeline, in the order sharp itself
 * applies them (geometry, then the colour space at output): the same pixels, one decode and encode fewer.
 */
function stagesOf(chain: readonly Operation[]): Operation[][] {
  const steps = chain.filter((step) => step.op !== 'auto_orient' && step.op !== 'format');
  if (steps.length === 0) return [[]];
  const stages =
    steps.length > 1 && steps[0]!.op === 'grayscale'
      ? [[], ...steps.map((step) => [step])]
      : steps.map((step) => [step]);
  const last = stages.at(-1)!;
  const before = stages.at(-2);
  const scales = (step: Operation | undefined): boolean => step?.op === 'resize' || step?.op === 'thumbnail';
  if (last[0]?.op === 'grayscale' && before?.length === 1 && scales(before[0])) {
    stages.splice(-2, 2, [before[0]!, last[0]]);
  }
  return stages;
}

interface RawPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** One band of grey as R = G = B, with the alpha of `source` (the same pixels before they turned grey). */
function spreadGrey(grey: RawPixels, source: RawPixels): RawPixels {
  const channels = source.channels === 4 || source.channels === 2 ? 4 : 3;
  const data = Buffer.allocUnsafe(grey.width * grey.height * channels);
  for (let p = 0, from = 0, to = 0; p < grey.width * grey.height; p++, from += source.channels, to += channels) {
    const value = grey.data[p * grey.channels]!;
    data[to] = value;
    data[to + 1] = value;
    data[to + 2] = value;
    if (channels === 4) data[to + 3] = source.data[from + source.channels - 1]!;
  }
  return { data, width: grey.width, height: grey.height, channels };
}

function encode(pipeline: Sharp, format: OutputFormat, quality: number): Sharp {
  switch (format) {
    case 'png':
      return pipeline.png();
    case 'jpeg':
      return pipeline.jpeg({ quality });
    case 'webp':
      return pipeline.webp({ quality });
    case 'avif':
      return pipeline.avif({ quality });
  }
}

/** The threads libvips gives one job when nothing says otherwise: the cores shared among the jobs run at once. */
export function defaultThreadsPerJob(concurrency: number): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, concurrency)));
}

/** Throws if the 'sharp' module cannot be loaded. */
export async function createSharpEngine(concurrency: number, threadsPerJob?: number): Promise<FilterEngine> {
  const sharp = (await import('sharp')).default;

  // sharp runs each job on a libuv thread and libvips splits it over sharp.concurrency() threads
  sharp.concurrency(threadsPerJob ?? defaultThreadsPerJob(concurrency));

  /** Returns why the input cannot be decoded, or undefined if it can. */
  async function decodeError(input: Buffer, maxPixels: number | undefined): Promise<string | undefined> {
    try {
      await sharp(input, inputOptions(maxPixels)).raw().toBuffer();
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  let closed = false;
  const engine: FilterEngine = {
    name: 'sharp',
    capabilities: SHARP_CAPABILITIES,
    /**
     * sharp applies the operations of one pipeline in an order of its own, and each kind once: a chain
     * runs as one pipeline per step, passing raw pixels from one to the next. The first decodes the
     * input, the last encodes the result; a one-step chain (a course filter) is the single pipeline it
     * always was.
     */
    async run(
      chain: readonly Operation[],
      input: Buffer,
      { signal, timeoutMs, maxPixels }: ApplyOptions = {},
    ): Promise<FilterResult> {
      if (closed) throw new Error('sharp engine is closed');
      signal?.throwIfAborted();
      const plan = planChain(chain, input, SHARP_CAPABILITIES, 'sharp', maxPixels);
      if (plan.output.format === 'png') {
        const small = greySmallPng(chain, input, maxPixels);
        if (small) return small;
      }
      const stages = stagesOf(chain);
      const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;

      const runStages = async (): Promise<FilterResult> => {
        let pixels: RawPixels | undefined;
        for (const [index, steps] of stages.entries()) {
          signal?.throwIfAborted();
          const source = pixels
            ? sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } })
            : sharp(input, inputOptions(maxPixels));
          const pipeline = steps.reduce((on, step) => addStep(on, step, plan.before.get(step)), source);
          // libvips checks the time as it works and stops itself once it is up: work abandoned on a deadline
          // does not keep a libuv thread and its memory for long
          if (deadline !== undefined) {
            const seconds = Math.ceil((deadline - performance.now()) / 1000);
            pipeline.timeout({ seconds: Math.min(MAX_TIMEOUT_SECONDS, Math.max(1, seconds)) });
          }
          if (index === stages.length - 1) {
            const encoder = encode(pipeline, plan.output.format, plan.output.quality);
            const { data, info } = await abandonable(encoder.toBuffer({ resolveWithObject: true }), signal);
            return { data, mime: plan.output.mime, width: info.width, height: info.height };
          }
          // sharp writes the raw pixels of a grey image as one band, alpha dropped: between steps they stay
          // sRGB, and a grayscale step's grey is spread over R, G, B again with the alpha it read
          const grey = steps.at(-1)?.op === 'grayscale';
          const output = grey ? pipeline.raw() : pipeline.toColourspace('srgb').raw();
          const { data, info } = await abandonable(output.toBuffer({ resolveWithObject: true }), signal);
          const next = { data, width: info.width, height: info.height, channels: info.channels };
          pixels = grey && pixels ? spreadGrey(next, pixels) : next;
        }
        throw new Error('a chain ended without a result');
      };

      try {
        return await runStages();
      } catch (err) {
        // abandoned: the input is not in question
        if (signal?.aborted) throw err;
        // Only the error path pays for a separate decode, which tells poison input
        // apart from a failure that a retry might not repeat.
        const reason = await decodeError(input, maxPixels);
        if (reason === undefined) throw err;
        throw new UndecodableImageError(`could not decode image: ${reason}`);
      }
    },
    apply(filter: FilterName, input: Buffer, options?: ApplyOptions): Promise<FilterResult> {
      return engine.run(chainOfFilter(filter), input, options);
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
  return engine;
}
