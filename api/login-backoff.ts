import { DEFAULT_MAX_KEYS } from './rate-limit.js';

/**
 * After `failures` failed logins in a row, each further attempt waits `firstDelayMs`, then twice that
 * after the next failure, and so on up to `maxDelayMs`. A success ends the streak.
 */
export interface BackoffPolicy {
  failures: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** The first delay, when the server CLI sets the backoff. */
export const FIRST_BACKOFF_MS = 1000;
/** The longest delay the server CLI accepts. */
export const LONGEST_BACKOFF_MS = 24 * 3_600_000;

/**
 * "5" (failures in a row before the backoff starts, 1 to 1000) or "off"/"0"/"none", with the delays
 * given: the first, doubling up to `maxDelayMs`.
 */
export function parseLoginBackoff(
  text: string,
  maxDelayMs: number,
  firstDelayMs = FIRST_BACKOFF_MS,
): BackoffPolicy | null {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'off' || trimmed === '0' || trimmed === 'none') return null;
  if (!/^\d+$/.test(trimmed) || Number(trimmed) > 1000)
    throw new Error(
      `"${text}" is not a login backoff: write the failures in a row it starts after (1 to 1000), or "off"`,
    );
  return { failures: Number(trimmed), firstDelayMs, maxDelayMs };
}

/** A key that has failed nothing for this long starts afresh. */
export const FORGET_AFTER_MS = 24 * 3_600_000;

interface Streak {
  /** Failed attempts in a row. */
  failures: number;
  /** Attempts let through whose outcome is not known yet (the password is being checked). */
  pending: number;
  /** When the last failure was counted (epoch ms). */
  last: number;
}

// how many of the least recently used keys are looked at for one that is not backing off
const EVICTION_SCAN = 16;

/**
 * Failed-login streaks per key (a username, a client address). Memory is bounded: at most `maxKeys`
 * streaks, in least-recently-used order. When the map is full, a key that is not backing off goes
 * first (the oldest of the least recently used few), so flooding the map with fresh names does not
 * readily wipe the streak of a name under attack; a streak quiet for FORGET_AFTER_MS is dropped.
 */
export class FailureBackoff {
  private readonly streaks = new Map<string, Streak>();

  constructor(
    readonly policy: BackoffPolicy,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(policy.failures) || policy.failures < 1)
      throw new Error('a login backoff starts after at least 1 failure');
    if (!(policy.firstDelayMs > 0) || !(policy.maxDelayMs >= policy.firstDelayMs))
      throw new Error('a login backoff needs 0 < first delay <= longest delay');
  }

  get size(): number {
    return this.streaks.size;
  }

  /** Milliseconds until `key` may make an attempt: 0 if it may now. */
  wait(key: string): number {
    const streak = this.current(key, this.now());
    if (!streak) return 0;
    const counted = streak.failures + streak.pending;
    if (counted < this.policy.failures) return 0;
    // an attempt in the backoff is being checked: the next one waits as if that one failed
    if (streak.pending > 0) return this.delayAfter(counted);
    return Math.max(0, streak.last + this.delayAfter(streak.failures) - this.now());
  }

  /** An attempt of `key` goes ahead (call it after `wait(key)` said 0); settle it with one of the three below. */
  begin(key: string): void {
    const now = this.now();
    const streak = this.current(key, now) ?? { failures: 0, pending: 0, last: now };
    streak.pending += 1;
    this.touch(key, streak);
  }

  failed(key: string): void {
    const now = this.now();
    const streak = this.current(key, now) ?? { failures: 0, pending: 1, last: now };
    streak.pending = Math.max(0, streak.pending - 1);
    streak.failures += 1;
    streak.last = now;
    this.touch(key, streak);
  }

  succeeded(key: string): void {
    this.streaks.delete(key);
  }

  /** The attempt ended before any password was checked (no credentials, say): it counts for nothing. */
  abandoned(key: string): void {
    const streak = this.streaks.get(key);
    if (!streak) return;
    streak.pending = Math.max(0, streak.pending - 1);
    if (streak.pending === 0 && streak.failures === 0) this.streaks.delete(key);
  }

  /** The delay after `failures` failures in a row (at least `policy.failures` of them). */
  private delayAfter(failures: number): number {
    const doublings = Math.min(failures - this.policy.failures, 40);
    return Math.min(this.policy.maxDelayMs, this.policy.firstDelayMs * 2 ** doublings);
  }

  private current(key: string, now: number): Streak | undefined {
    const streak = this.streaks.get(key);
    if (streak && streak.pending === 0 && now - streak.last > FORGET_AFTER_MS) {
      this.streaks.delete(key);
      return undefined;
    }
    return streak;
  }

  private touch(key: string, streak: Streak): void {
    this.streaks.delete(key);
    this.streaks.set(key, streak);
    while (this.streaks.size > this.maxKeys) this.evictOne(this.now());
  }

  private evictOne(now: number): void {
    let victim: string | undefined;
    let scanned = 0;
    for (const [key, streak] of this.streaks) {
      victim ??= key;
      const harmless = streak.failures < this.policy.failures || now - streak.last > FORGET_AFTER_MS;
      if (harmless && streak.pending === 0) {
        victim = key;
        break;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    if (victim !== undefined) this.streaks.delete(victim);
  }
}
