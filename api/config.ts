import type { EventTimings, StreamLimits } from './events/index.js';
import type { BackoffPolicy } from './login-backoff.js';
import type { RateLimit } from './rate-limit.js';

export interface ApiConfig {
  systemName: string;
  host: string;
  port: number;
  /** Largest accepted upload, in bytes. */
  maxUploadBytes: number;
  /** Largest accepted image, in pixels (width * height), read from the header before any decoding. */
  maxPixels: number;
  registrationOpen: boolean;
  /** Shortest password a new user may choose (registration, users from the configuration). Default 8. */
  minPasswordLength?: number;
  /** Largest accepted JSON or form body, in bytes. */
  maxBodyBytes: number;
  /**
   * Login and registration attempts per username (whether or not the user exists), then 429.
   * Absent or null: no limit (the server CLI sets 10/10s).
   */
  loginRateLimit?: RateLimit | null;
  /**
   * Login and registration attempts per client address (an IPv6 client by its /64), then 429.
   * Absent or null: no limit (the server CLI sets 50/10s).
   */
  loginRateLimitPerClient?: RateLimit | null;
  /**
   * Failed logins in a row per username before each further attempt waits (1 s, doubling to 15 min
   * from the server CLI), until a success. Absent or null: no backoff (the server CLI sets 5).
   */
  loginBackoff?: BackoffPolicy | null;
  /** The same per client address (an IPv6 client by its /64). Absent or null: none (the server CLI sets 20). */
  loginBackoffPerClient?: BackoffPolicy | null;
  /** Usernames and addresses the login limiter remembers at most (least recently used forgotten first). */
  rateLimitMaxKeys?: number;
  /**
   * express "trust proxy": whose X-Forwarded-For gives the client address. Absent or false: nobody's,
   * the address is the TCP peer. E.g. "loopback", "10.0.0.0/8,fc00::/7", or a hop count.
   */
  trustProxy?: boolean | number | string;
  /** Time a client has to send the request headers (ms). Default 20 s. */
  headersTimeoutMs?: number;
  /** Time a client has to send the whole request, body included (ms; 0 = none). Default 120 s. */
  requestTimeoutMs?: number;
  /** Time an idle keep-alive connection stays open (ms). Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Timings of the Server-Sent Events (GET /events); the defaults suit a browser. */
  events?: Partial<EventTimings>;
  /** Caps on the open event streams and on what one may have waiting (defaults: 1000, 8 per user, 256 KB). */
  streams?: Partial<StreamLimits>;
  /**
   * When set, GET /metrics wants `Authorization: Bearer <this>`; absent or null: open to anyone who
   * reaches the port.
   */
  metricsToken?: string | null;
}

export const DEFAULT_HTTP_TIMEOUTS = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
} as const;
