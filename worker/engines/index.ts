// Public face of the worker's filter engines.
import { createJimpEngine } from './jimp-engine.js';
import { createSharpEngine } from './sharp-engine.js';
import type { EngineChoice, FilterEngine } from './types.js';

export type {
  ApplyOptions,
  EngineCapabilities,
  EngineChoice,
  EngineName,
  FilterEngine,
  FilterResult,
  ImageMime,
  OutputMime,
} from './types.js';
export { ChainError, UndecodableImageError } from './errors.js';

/**
 * 'auto' prefers sharp and falls back to jimp when sharp cannot be loaded. `concurrency`: the jobs run at once;
 * `threadsPerJob`: the threads sharp's libvips may give one job (default: the cores shared among those jobs);
 * jimp runs each job on one thread of its own.
 */
export async function createEngine(
  choice: EngineChoice,
  concurrency: number,
  threadsPerJob?: number,
): Promise<FilterEngine> {
  if (choice === 'jimp') return createJimpEngine(concurrency);
  try {
    return await createSharpEngine(concurrency, threadsPerJob);
  } catch (err) {
    if (choice === 'auto') return createJimpEngine(concurrency);
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`engine 'sharp' was requested but the sharp module could not be loaded: ${reason}`, { cause: err });
  }
}
