export { startWorker, type WorkerAgent } from './agent.js';
export { parseWorkerArgs } from './cli.js';
export type { WorkerConfig } from './config.js';
