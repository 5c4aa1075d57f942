export { createApp } from './app.js';
export { startApi, type ApiServer } from './server.js';
export type { ApiConfig } from './config.js';
