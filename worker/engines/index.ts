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

/** 'auto' prefers sharp and falls back to jimp when sharp cannot be loaded. */
export async function createEngine(choice: EngineChoice, concurrency: number): Promise<FilterEngine> {
  if (choice === 'jimp') return createJimpEngine(concurrency);
  try {
    return await createSharpEngine(concurrency);
  } catch (err) {
    if (choice === 'auto') return createJimpEngine(concurrency);
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`engine 'sharp' was requested but the sharp module could not be loaded: ${reason}`, { cause: err });
  }
}
