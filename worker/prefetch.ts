/**
 * How many assignments a worker takes beyond its slots (--prefetch): a number, or `auto`, which follows the
 * length of its jobs: as many as its slots work through in about AUTO_AHEAD_MS, from 1 to AUTO_MOST. Jobs of a
 * few milliseconds (thumbnails) so wait on the worker several at a time, and their stored results and
 * assignments go several to a message; a job of 50 ms or more keeps one waiting, so that no job sits on one
 * worker while another frees up.
 */
export type PrefetchSetting = number | 'auto';

export const DEFAULT_PREFETCH: PrefetchSetting = 'auto';
/** What the jobs waiting on an `auto` worker should take its slots, together, at most. */
export const AUTO_AHEAD_MS = 20;
/** The most an `auto` worker takes beyond its slots. */
export const AUTO_MOST = 16;
/** How much each job's length moves the typical length an `auto` worker goes by. */
const LEARNING_RATE = 0.2;

/** --prefetch (or --worker-prefetch) as given: `auto`, or a whole number from 0 to 256. */
export function parsePrefetch(value: unknown, flag: string): PrefetchSetting {
  if (value === 'auto') return 'auto';
  const count =
    typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isInteger(count) || count < 0 || count > 256)
    throw new Error(`--${flag} must be "auto" or a whole number from 0 to 256`);
  return count;
}

/** The prefetch of `setting` now, for a worker of `slots` slots whose jobs typically take `jobMs` (null: none yet). */
export function prefetchFor(setting: PrefetchSetting, slots: number, jobMs: number | null): number {
  if (setting !== 'auto') return setting;
  if (jobMs === null) return 1;
  return Math.max(1, Math.min(AUTO_MOST, Math.floor((AUTO_AHEAD_MS * slots) / Math.max(jobMs, 0.1))));
}

/** The typical job length after one more job of `ms`. */
export function learnJobMs(typical: number | null, ms: number): number {
  return typical === null ? ms : typical + LEARNING_RATE * (ms - typical);
}
