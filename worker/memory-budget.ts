import { totalmem } from 'node:os';
import { chainGeometry, type Operation } from '../common/operations/index.js';
import { formatSize } from '../common/units.js';
import type { EngineName } from './engines/index.js';

/**
 * What one job costs in memory at its peak beyond the worker's own, per pixel of its original: decoded
 * pixels, the filter's output, the codec's buffers. Measured (BENCHMARKS.md, engines: peak RSS of one
 * 4000x3000 frame less that of a 640x480 one): sharp 233-258 MB, jimp 216-264 MB for 12 Mpx, about
 * 22 bytes per pixel; the 7000x7000 PNG of issue 12 took jimp 764 MB, 15.6 bytes per pixel. 24 leaves
 * some room above both.
 */
export const JOB_BYTES_PER_PIXEL: Readonly<Record<EngineName, number>> = { sharp: 24, jimp: 24 };
/** And what any job costs whatever its size (buffers of the original and the result, the call's own). */
export const JOB_BASE_BYTES = 16 * 2 ** 20;

/**
 * A job's estimated peak, from the largest image its chain makes (the original, or a step that enlarges
 * it: every step's size follows from the original's); 0 when its dimensions are unknown (a controller that
 * does not send them).
 */
export function jobPeakBytes(
  engine: EngineName,
  width: number | undefined,
  height: number | undefined,
  chain: readonly Operation[] = [],
): number {
  if (!width || !height) return 0;
  let pixels = width * height;
  // the size the API read from the header, before any EXIF turn: a crop that fits only the turned image
  // finds no geometry here, and the original's size stands
  const geometry = chainGeometry(chain, { width, height });
  if (geometry.ok) for (const size of geometry.sizes) pixels = Math.max(pixels, size.width * size.height);
  return JOB_BASE_BYTES + pixels * JOB_BYTES_PER_PIXEL[engine];
}

/** The machine's memory, or the container's limit when it has a smaller one. */
export function machineMemory(): number {
  // cgroup's limit (0 or undefined without one; absurdly large when unlimited)
  const limit = process.constrainedMemory?.() ?? 0;
  const total = totalmem();
  return limit > 0 && limit < total ? limit : total;
}

/** --max-memory by default: half of the memory, shared among the workers of the machine. */
export function defaultMemoryBudget(workersOnMachine = 1): number {
  return Math.floor(machineMemory() / 2 / Math.max(1, workersOnMachine));
}

/**
 * The worker's memory budget (--max-memory) and the estimates of the jobs it holds. A job is admitted
 * only if its estimate fits beside those of the jobs running, so slots never multiply the memory one
 * large image needs; a job that alone is larger than the budget is admitted only when nothing else runs,
 * so it can endanger no other job (the API's --max-pixels, which the engines enforce as well, bounds it).
 */
export class MemoryBudget {
  private readonly held = new Map<string, number>();
  private used = 0;

  constructor(readonly budgetBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Whether a job of `bytes` may start now. */
  fits(bytes: number): boolean {
    if (bytes === 0) return true;
    if (this.held.size === 0) return true;
    return this.used + bytes <= this.budgetBytes;
  }

  take(jobId: string, bytes: number): void {
    this.give(jobId);
    this.held.set(jobId, bytes);
    this.used += bytes;
  }

  /** The job's memory is free again (its work is done, or it ended). */
  give(jobId: string): void {
    const bytes = this.held.get(jobId);
    if (bytes === undefined) return;
    this.held.delete(jobId);
    this.used -= bytes;
  }

  describe(bytes: number): string {
    const budget = formatSize(this.budgetBytes);
    return `needs ~${formatSize(bytes)}, ${formatSize(this.used)} of this worker's ${budget} taken`;
  }
}
