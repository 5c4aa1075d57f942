export { createApp } from './app.js';
export { startApi, type ApiServer } from './server.js';
export { DEFAULT_HTTP_TIMEOUTS, type ApiConfig } from './config.js';
export { parseRateLimit, type RateLimit } from './rate-limit.js';
