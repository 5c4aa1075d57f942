#!/usr/bin/env node
import path from 'node:path';
import { createLogger, resolveLogFormat } from '../common/log.js';
// the constant alone: worker/index.js would load the whole worker (systeminformation and all)
import { DEFAULT_JOB_DEADLINE_MS } from '../worker/job-runner.js';
import { DEFAULT_DATA_DIR } from './cluster-secret.js';
import { sharedEngineThreads, startLocalWorkers } from './local-workers.js';
import { whenParentGone } from './parent-gone.js';
import { parseServerArgs, type ServerCliConfig } from './server-cli.js';
import { missingNodeFlags } from './node-flags.js';
import { openListener, type HttpListener } from '../api/index.js';
import { startServer } from './server.js';

let config: ServerCliConfig;
try {
  config = await parseServerArgs(process.argv.slice(2), process.env);
} catch (error) {
  console.error(`dpip: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
const logFormat = resolveLogFormat(config.logFormat, process.stdout.isTTY === true);
const log = createLogger('dpip', config.logLevel, logFormat);
const missingFlags = missingNodeFlags('dpip', process.execArgv, process.env.NODE_OPTIONS);
if (missingFlags.length > 0) {
  const command = `node ${missingFlags.join(' ')} dist/bin/dpip.js`;
  log.info(
    { missing: missingFlags },
    `started without its node flags: \`npm start\` gives them, or \`${command}\` (up to a fifth less CPU per upload)`,
  );
}
/** On a shared (PostgreSQL) datastore, the API's port stays open across a step-down and a new lead. */
async function sharedListener(): Promise<HttpListener | undefined> {
  if (config.server.controller.datastore?.kind !== 'postgres') return undefined;
  return openListener(config.server.api, log.child({ component: 'api' }));
}
let listener: HttpListener | undefined;
let server = await sharedListener()
  .then((opened) => {
    listener = opened;
    return startServer(config.server, log, listener ? { listener } : {});
  })
  .catch((error: unknown) => {
    console.error(`dpip: cannot start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
let stopping = false;

/**
 * A server that loses the lead of a shared datastore steps down at once (another server may lead already, and
 * its state in memory may be old): it stops its controller, scheduler and API, then starts again as any server
 * does, forwarding to the leader and waiting to lead (reading every record again when it does).
 */
async function stepDownWhenLost(): Promise<void> {
  for (;;) {
    const reason = await server.lost;
    if (stopping) return;
    log.error({ reason }, 'lost the lead of the shared datastore: stepping down');
    await server.close().catch((error: unknown) => log.warn({ error: String(error) }, 'stepping down: close failed'));
    if (stopping) return;
    server = await startServer(config.server, log, { waitForDatastore: true, ...(listener ? { listener } : {}) });
  }
}
stepDownWhenLost().catch((error: unknown) => {
  log.error({ error: String(error) }, 'could not start again after stepping down');
  process.exit(3);
});
const controllerPort = config.server.controller.port;
const workers = startLocalWorkers(
  {
    count: config.localWorkers,
    controllerHost: ['0.0.0.0', '::', '*'].includes(config.server.controller.bindHost)
      ? '127.0.0.1'
      : config.server.controller.bindHost,
    controllerPort,
    secret: config.server.controller.clusterSecret,
    engine: config.engine,
    slots: config.workerSlots,
    prefetch: config.workerPrefetch,
    engineThreads: sharedEngineThreads(config.localWorkers, config.workerSlots),
    // the workers give up on a job (and say why) before the controller takes it from them
    jobDeadlineMs: Math.min(DEFAULT_JOB_DEADLINE_MS, Math.floor(config.server.controller.jobTimeoutMs / 2)),
    imagesDir: config.server.controller.imagesDir,
    logLevel: config.logLevel,
    logFormat,
  },
  log.child({ component: 'local-workers' }),
);

const api = `http://localhost:${server.api.port}`;
process.stdout.write(
  `${[
    '',
    `DPIP is running.`,
    `  REST API:    ${api}`,
    `  dashboard:   ${api}/`,
    `  controller:  tcp://localhost:${controllerPort} ` +
      `(workers register on ${controllerPort + 1}, heartbeat on ${controllerPort + 2})`,
    `  local workers: ${config.localWorkers}`,
    `  cluster secret${config.secretGenerated ? ' (new, kept in the data dir)' : ''}: ` +
      config.server.controller.clusterSecret,
    '',
    'Try it:',
    `  curl -X POST ${api}/register -H 'Content-Type: application/json' ` +
      `-d '{"username":"alice","password":"alice-secret"}'`,
    `  TOKEN=$(curl -s -u alice:alice-secret ${api}/login | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')`,
    `  curl -X POST ${api}/workloads -H "Authorization: Bearer $TOKEN"`,
    ...(config.secretFile === null
      ? []
      : [
          `Add a worker on this machine (it reads the secret from ${config.secretFile}):`,
          `  npm run worker -- --controller localhost:${controllerPort} --worker-name w1 --tags a,b` +
            (path.dirname(config.secretFile) === path.resolve(DEFAULT_DATA_DIR)
              ? ''
              : ` --data-dir ${path.dirname(config.secretFile)}`),
        ]),
    'Add a worker on another machine:',
    `  DPIP_SECRET=<secret> npm run worker -- --controller <this-host>:${controllerPort} --worker-name w1 --tags a,b`,
    'Ctrl-C stops everything.',
    '',
  ].join('\n')}\n`,
);

function shutdown(reason: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, 'stopping: workers drain, then the server closes');
  void workers
    .stop()
    .then(() => server.close())
    .then(() => listener?.close())
    .then(() => process.exit(0))
    .catch((error: unknown) => {
      log.error({ error: String(error) }, 'could not stop cleanly');
      process.exit(1);
    });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => shutdown(signal));
// started by `npm start`'s launcher, the server has an IPC channel to it. When the launcher is gone (even
// killed outright), the channel closes and the server stops too, instead of living on as an orphan.
whenParentGone(() => shutdown('the process that started the server is gone'));
