export { startWorker, type WorkerAgent } from './agent.js';
export type { WorkerConfig } from './config.js';
