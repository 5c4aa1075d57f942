import { isIPv4, isIPv6 } from 'node:net';

/** `attempts` in a burst, then one more every `windowMs / attempts` (a token bucket). */
export interface RateLimit {
  attempts: number;
  windowMs: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Keys tracked at most; past that the least recently used key is forgotten. */
export const DEFAULT_MAX_KEYS = 10_000;

/**
 * Token buckets per key (a client address, a username). Memory is bounded: at most `maxKeys`
 * buckets, kept in least-recently-used order; a bucket that has refilled is dropped, since it is
 * the same as no bucket, and when the map is full the least recently used key is evicted.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    readonly limit: RateLimit,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(limit.attempts) || limit.attempts < 1)
      throw new Error('a rate limit needs at least 1 attempt');
    if (!Number.isFinite(limit.windowMs) || limit.windowMs <= 0)
      throw new Error('a rate limit needs a window longer than 0 ms');
    this.perMs = limit.attempts / limit.windowMs;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Milliseconds until `key` may make an attempt: 0 if it may now. Takes nothing. */
  wait(key: string): number {
    const tokens = this.tokensOf(key, this.now());
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / this.perMs);
  }

  /** Spends one attempt of `key` (call it after `wait(key)` said 0). */
  take(key: string): void {
    const now = this.now();
    const tokens = this.tokensOf(key, now);
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: Math.max(0, tokens - 1), at: now });
    this.prune(now);
  }

  private tokensOf(key: string, now: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit.attempts;
    return Math.min(this.limit.attempts, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs);
  }

  private prune(now: number): void {
    // the oldest buckets first: drop the ones that have refilled (a couple per call keeps this O(1))
    let checked = 0;
    for (const [key, bucket] of this.buckets) {
      if (checked++ >= 2) break;
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.limit.attempts) this.buckets.delete(key);
      else break;
    }
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) break;
      this.buckets.delete(oldest.value);
    }
  }
}

/** "10/10s", "5/500ms", "100/1m", "20/2h" or "20/3000" (ms); "off" or "0" for no limit. */
export function parseRateLimit(text: string): RateLimit | null {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'off' || trimmed === '0' || trimmed === 'none') return null;
  const match = /^(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(trimmed);
  if (!match)
    throw new Error(`"${text}" is not a rate limit: write attempts/window, e.g. 10/10s, 5/500ms, 100/1m, or "off"`);
  const attempts = Number(match[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[3] ?? 'ms'] ?? 1;
  const windowMs = Number(match[2]) * unit;
  if (attempts < 1 || attempts > 1_000_000) throw new Error(`"${text}": attempts must be from 1 to 1000000`);
  if (windowMs < 1 || windowMs > 24 * 3_600_000) throw new Error(`"${text}": the window must be from 1 ms to 24 h`);
  return { attempts, windowMs };
}

/**
 * The key of a client address: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64 prefix, since one
 * host usually holds a whole /64 and could otherwise take a fresh address for every attempt.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address.slice(0, 64);
  const [head = '', tail] = bare.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? headGroups
      : [
          ...headGroups,
          ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'),
          ...tailGroups,
        ];
  return `${groups
    .slice(0, 4)
    .map((group) => (parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`;
}
