#!/usr/bin/env node
import { createLogger, resolveLogFormat } from '../common/log.js';
import { hasMallocTunables, runsOnGlibc } from '../common/malloc-tunables.js';
import { missingNodeFlags } from './node-flags.js';
import { whenParentGone } from './parent-gone.js';
import { startWorker, type WorkerAgent, type WorkerConfig } from '../worker/index.js';
import { parseWorkerArgs } from './worker-cli.js';

let config: WorkerConfig;
try {
  config = parseWorkerArgs(process.argv.slice(2), process.env);
} catch (error) {
  console.error(`dpip-worker: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
const log = createLogger(
  `worker:${config.name}`,
  config.logLevel,
  resolveLogFormat(config.logFormat, process.stdout.isTTY === true),
);
if (!hasMallocTunables(process.env) && runsOnGlibc()) {
  log.info(
    'glibc malloc tunables are not set: `npm run worker` sets them ' +
      '(about a tenth less CPU per image with sharp, and a steadier peak memory)',
  );
}
const missingFlags = missingNodeFlags('dpip-worker', process.execArgv, process.env.NODE_OPTIONS);
if (missingFlags.length > 0) {
  log.info(
    { missing: missingFlags },
    `started without its node flags: \`npm run worker\` gives them, or \`node ${missingFlags.join(' ')} ` +
      'dist/bin/dpip-worker.js` (a tenth of the full garbage collections on small jobs)',
  );
}

let agent: WorkerAgent | null = null;
let stopRequest: { reason: string; drainMs: number | undefined } | null = null;

function stop(): void {
  if (!agent || !stopRequest) return;
  agent
    .stop(stopRequest.drainMs)
    .then(() => process.exit(0))
    .catch((error: unknown) => {
      log.error({ error: String(error) }, 'could not stop cleanly');
      process.exit(1);
    });
}

/** The first request wins; one that comes while the worker is still starting is carried out once it has started. */
function requestStop(reason: string, drainMs?: number): void {
  if (stopRequest) return;
  stopRequest = { reason, drainMs };
  log.info({ reason }, drainMs === 0 ? 'stopping: handing back running jobs' : 'stopping: finishing running jobs');
  stop();
}

// handlers first: a signal during start-up (engine, resource probe) still ends in a clean stop and exit 0
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => requestStop(signal));
// a local worker started by `dpip`, or a worker started by `npm run worker`'s launcher, has an IPC channel to
// the process that started it. When that process dies (even by SIGKILL), the channel closes: the worker
// leaves too, instead of living on as an orphan that keeps its name taken.
whenParentGone(() => requestStop('the process that started this worker is gone', 0));

agent = await startWorker(config, log);
stop();
