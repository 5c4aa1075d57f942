// What both engines check before decoding a chain's input: its format and header, whether the engine
// can run the chain, the size of every step (a crop outside the image fails here, named), and what the
// result will be.
import { canRun, chainGeometry, type Operation, type OutputFormat, type Size } from '../../common/operations/index.js';
import { ChainError } from './errors.js';
import { detectFormat, FORMAT_OF_MIME, MIME_OF_FORMAT, readHeader, type ImageHeader } from './format.js';
import type { EngineCapabilities, ImageMime, OutputMime } from './types.js';

/** A JPEG written without a `format` step (the course's results): as before chains. */
export const KEPT_JPEG_QUALITY = 90;

export interface ChainPlan {
  mime: ImageMime;
  header: ImageHeader;
  output: { format: OutputFormat; mime: OutputMime; quality: number; size: Size };
  /** The size each step of the chain meets (the one before it makes, or the upright input's). */
  before: ReadonlyMap<Operation, Size>;
}

/**
 * Throws UndecodableImageError for input that is no PNG or JPEG or has no readable header, and ChainError
 * for a chain this engine cannot run, or whose geometry does not fit the image: a crop outside it, or a
 * step making more than `maxPixels` pixels (when the input itself is within them: a larger input is the
 * decoder's to refuse).
 */
export function planChain(
  chain: readonly Operation[],
  input: Uint8Array,
  capabilities: EngineCapabilities,
  engine: string,
  maxPixels: number | undefined,
): ChainPlan {
  const missing = canRun(chain, capabilities);
  if (missing) throw new ChainError(`this worker's engine (${engine}) cannot ${missing}`, true);
  const mime = detectFormat(input);
  const header = readHeader(input, mime);
  const inputPixels = header.width * header.height;
  const limit = maxPixels !== undefined && inputPixels <= maxPixels ? maxPixels : undefined;
  const geometry = chainGeometry(chain, header.oriented, limit);
  if (!geometry.ok) throw new ChainError(geometry.error);
  const last = chain.at(-1);
  const format = last?.op === 'format' ? last.type : FORMAT_OF_MIME[mime];
  const quality = last?.op === 'format' ? last.quality : KEPT_JPEG_QUALITY;
  const before = new Map(
    chain.map((step, index) => [step, index === 0 ? header.oriented : geometry.sizes[index - 1]!]),
  );
  return { mime, header, output: { format, mime: MIME_OF_FORMAT[format], quality, size: geometry.output }, before };
}
