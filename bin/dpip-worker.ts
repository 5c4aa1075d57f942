#!/usr/bin/env node
import { createLogger } from '../common/log.js';
import { parseWorkerArgs, startWorker } from '../worker/index.js';

let config;
try {
  config = parseWorkerArgs(process.argv.slice(2), process.env);
} catch (error) {
  console.error(`dpip-worker: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
const log = createLogger(`worker:${config.name}`, config.logLevel);
const agent = await startWorker(config, log);
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing running jobs');
    void agent.stop().then(() => process.exit(0));
  });
}
