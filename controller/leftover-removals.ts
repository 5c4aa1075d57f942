import { backoffMs, type BackoffPolicy } from '../common/backoff.js';
import type { Logger } from '../common/log.js';

/** Retries of a removal that failed: 0.5 s doubling up to 30 s, for as long as the server runs. */
export const REMOVAL_RETRY: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };
/**
 * Removals waiting for a retry at most. Past it a failed removal is given up (its `onDone` runs: nothing will
 * touch its files any more), and what it left is removed at the next start, with every file no record names.
 */
export const MAX_LEFTOVER_REMOVALS = 10_000;

interface Leftover {
  what: string;
  remove: () => Promise<void>;
  onDone: () => void;
  attempts: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The files of deleted records (a workload's folder, an image's files), removed after the deletion committed.
 * A removal that fails then (the object store down, a folder a worker is still writing into) does not fail
 * the deletion, which already happened: it is tried again, with a growing pause, until it succeeds, and at
 * once when the image store answers again (`retryNow`). `onDone` runs once the files are gone (or the removal
 * was given up): a deleted workload's name is free only then.
 */
export class LeftoverRemovals {
  private readonly waiting = new Set<Leftover>();
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly policy: BackoffPolicy = REMOVAL_RETRY,
    private readonly limit = MAX_LEFTOVER_REMOVALS,
  ) {}

  /** Removals waiting for their next try. */
  get pending(): number {
    return this.waiting.size;
  }

  /**
   * Tries `remove` now; settles after that first try, whatever it did (it never rejects). On failure the
   * removal waits for its retries, and `onDone` runs after the one that succeeds.
   */
  async remove(what: string, remove: () => Promise<void>, onDone: () => void = () => undefined): Promise<void> {
    const leftover: Leftover = { what, remove, onDone, attempts: 0, timer: null };
    await this.attempt(leftover);
  }

  /** The image store answers again: every waiting removal is tried now. */
  retryNow(): void {
    for (const leftover of this.waiting) {
      if (!leftover.timer) continue;
      clearTimeout(leftover.timer);
      leftover.timer = null;
      void this.attempt(leftover);
    }
  }

  /** Stops retrying: what is left is removed at the next start (files no record names). */
  close(): void {
    this.closed = true;
    for (const leftover of this.waiting) if (leftover.timer) clearTimeout(leftover.timer);
    this.waiting.clear();
  }

  private async attempt(leftover: Leftover): Promise<void> {
    leftover.attempts += 1;
    try {
      await leftover.remove();
    } catch (error) {
      this.failed(leftover, error instanceof Error ? error.message : String(error));
      return;
    }
    if (this.waiting.delete(leftover))
      this.log.info({ removal: leftover.what, attempts: leftover.attempts }, 'removed the files of a deletion at last');
    leftover.onDone();
  }

  private failed(leftover: Leftover, reason: string): void {
    const first = !this.waiting.has(leftover);
    if (this.closed || (first && this.waiting.size >= this.limit)) {
      this.waiting.delete(leftover);
      this.log.warn(
        { removal: leftover.what, reason },
        'could not remove the files of a deletion: they are removed at the next start',
      );
      leftover.onDone();
      return;
    }
    if (first) {
      this.waiting.add(leftover);
      this.log.warn({ removal: leftover.what, reason }, 'could not remove the files of a deletion yet: retrying');
    }
    leftover.timer = setTimeout(
      () => {
        leftover.timer = null;
        void this.attempt(leftover);
      },
      backoffMs(this.policy, leftover.attempts),
    );
    leftover.timer.unref();
  }
}
