export interface BackoffPolicy {
  /** The ceiling of the first wait. */
  baseMs: number;
  /** No wait is longer than this. */
  maxMs: number;
}

/**
 * Exponential backoff with jitter: a uniformly random wait between half and all of
 * min(maxMs, baseMs * 2^(attempt-1)). The jitter keeps many clients that failed together from
 * retrying together; the half that is fixed keeps one client from retrying at once.
 */
export function backoffMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
