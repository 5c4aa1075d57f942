export { createApp } from './app.js';
export { openListener, startApi, type ApiServer, type HttpListener } from './server.js';
export { startStandbyApi } from './standby.js';
export { DEFAULT_HTTP_TIMEOUTS, type ApiConfig } from './config.js';
export { DEFAULT_STREAM_LIMITS, type StreamLimits } from './events/index.js';
export { parseRateLimit, type RateLimit } from './rate-limit.js';
export {
  FIRST_BACKOFF_MS,
  LONGEST_BACKOFF_MS,
  parseLoginBackoff,
  type BackoffPolicy,
} from './login-backoff.js';
