import type { Request } from 'express';
import type { Logger } from '../common/log.js';
import { validateUsername } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { TooManyRequests } from './errors.js';
import { clientKey, DEFAULT_MAX_KEYS, RateLimiter } from './rate-limit.js';
import { LogThrottle } from '../common/log-throttle.js';

/** Throws 429 if this attempt is over a limit; otherwise counts it. */
export type LoginGate = (req: Request, username: string | undefined) => void;

// usernames that cannot exist share one bucket, so made-up names cannot fill the limiter
const INVALID_NAME = '\u0000invalid';

/**
 * Login and registration attempts, limited per username (whether or not it exists, so a 429 tells
 * nothing about which users exist) and per client address. The check comes before the password
 * hash, so a flood costs no scrypt work; an attempt is allowed only when both buckets have room,
 * and only allowed attempts are counted.
 */
export function loginGate(config: ApiConfig, log: Logger): LoginGate {
  const maxKeys = config.rateLimitMaxKeys ?? DEFAULT_MAX_KEYS;
  const perUser = config.loginRateLimit ? new RateLimiter(config.loginRateLimit, maxKeys) : null;
  const perClient = config.loginRateLimitPerClient ? new RateLimiter(config.loginRateLimitPerClient, maxKeys) : null;
  const refused = new LogThrottle();
  return (req, username) => {
    if (!perUser && !perClient) return;
    const client = clientKey(req.ip ?? req.socket.remoteAddress);
    const user = username === undefined ? undefined : validateUsername(username) === null ? username : INVALID_NAME;
    const wait = Math.max(perClient?.wait(client) ?? 0, user !== undefined && perUser ? perUser.wait(user) : 0);
    if (wait > 0) {
      if (refused.next()) {
        log.warn(
          { client, user: user === INVALID_NAME ? '(invalid)' : user, count: refused.count },
          'login attempts over the rate limit',
        );
      }
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      throw new TooManyRequests(`too many login attempts: try again in ${seconds} s`, seconds);
    }
    perClient?.take(client);
    if (user !== undefined) perUser?.take(user);
  };
}
