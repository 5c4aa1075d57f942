export { startWorker, type WorkerAgent } from './agent.js';
export type { ControllerAddress, WorkerConfig } from './config.js';
export { DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts } from './api-client.js';
export { DEFAULT_JOB_DEADLINE_MS } from './job-runner.js';
export { defaultMemoryBudget } from './memory-budget.js';
export { DEFAULT_PREFETCH, parsePrefetch, type PrefetchSetting } from './prefetch.js';
