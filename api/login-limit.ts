import type { Request } from 'express';
import type { Logger } from '../common/log.js';
import { validateUsername } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { TooManyRequests } from './errors.js';
import { FailureBackoff } from './login-backoff.js';
import { clientKey, DEFAULT_MAX_KEYS, RateLimiter } from './rate-limit.js';
import { LogThrottle } from '../common/log-throttle.js';

/** How a login attempt that was let through ended: `none` when no password was checked. */
export type AttemptOutcome = 'success' | 'failure' | 'none';

export interface LoginGate {
  /** POST /register: throws 429 if the attempt is over a rate limit; otherwise counts it. */
  registration(req: Request, username: string | undefined): void;
  /**
   * /login: throws 429 if the attempt is over a rate limit or inside a backoff; otherwise counts it and
   * returns the function that records its outcome (call it once, whatever happens).
   */
  login(req: Request, username: string | undefined): (outcome: AttemptOutcome) => void;
}

// usernames that cannot exist share one bucket, so made-up names cannot fill the limiter
const INVALID_NAME = '\u0000invalid';

/**
 * Login and registration attempts, limited per username (whether or not it exists, so a 429 tells
 * nothing about which users exist) and per client address, in two ways:
 * - flat rate limits (token buckets) on every attempt, logins and registrations alike;
 * - a backoff on failed logins: after a run of failures for a username, or from an address, each
 *   further attempt waits a delay that doubles with each failure, until a success.
 * The checks come before the password hash, so a flood costs no scrypt work; an attempt is allowed
 * only when every limit has room, and only allowed attempts are counted.
 */
export function loginGate(config: ApiConfig, log: Logger): LoginGate {
  const maxKeys = config.rateLimitMaxKeys ?? DEFAULT_MAX_KEYS;
  const perUser = config.loginRateLimit ? new RateLimiter(config.loginRateLimit, maxKeys) : null;
  const perClient = config.loginRateLimitPerClient ? new RateLimiter(config.loginRateLimitPerClient, maxKeys) : null;
  const userBackoff = config.loginBackoff ? new FailureBackoff(config.loginBackoff, maxKeys) : null;
  const clientBackoff = config.loginBackoffPerClient ? new FailureBackoff(config.loginBackoffPerClient, maxKeys) : null;
  const refused = new LogThrottle();

  function admit(req: Request, username: string | undefined, backoff: boolean): { client: string; user?: string } {
    const client = clientKey(req.ip ?? req.socket.remoteAddress);
    const user = username === undefined ? undefined : validateUsername(username) === null ? username : INVALID_NAME;
    const limited = Math.max(perClient?.wait(client) ?? 0, user !== undefined && perUser ? perUser.wait(user) : 0);
    const byUser = backoff && user !== undefined ? (userBackoff?.wait(user) ?? 0) : 0;
    const byClient = backoff ? (clientBackoff?.wait(client) ?? 0) : 0;
    const wait = Math.max(limited, byUser, byClient);
    if (wait > 0) {
      const reason = byUser === wait ? 'username backoff' : byClient === wait ? 'address backoff' : 'rate limit';
      if (refused.next()) {
        log.warn(
          { client, user: user === INVALID_NAME ? '(invalid)' : user, reason, count: refused.count },
          'login attempt refused: too many',
        );
      }
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      const what =
        byUser === wait
          ? 'too many failed login attempts for this username'
          : byClient === wait
            ? 'too many failed login attempts from this address'
            : 'too many login attempts';
      throw new TooManyRequests(`${what}: try again in ${seconds} s`, seconds);
    }
    perClient?.take(client);
    if (user !== undefined) perUser?.take(user);
    return { client, user };
  }

  return {
    registration(req, username) {
      admit(req, username, false);
    },
    login(req, username) {
      const { client, user } = admit(req, username, true);
      const streaks: [FailureBackoff, string][] = [];
      if (userBackoff && user !== undefined) streaks.push([userBackoff, user]);
      if (clientBackoff) streaks.push([clientBackoff, client]);
      for (const [backoff, key] of streaks) backoff.begin(key);
      let settled = false;
      return (outcome) => {
        if (settled) return;
        settled = true;
        for (const [backoff, key] of streaks) {
          if (outcome === 'success') backoff.succeeded(key);
          else if (outcome === 'failure') backoff.failed(key);
          else backoff.abandoned(key);
        }
      };
    },
  };
}
