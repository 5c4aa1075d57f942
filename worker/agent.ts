import type { Logger } from '../common/log.js';
import type { WorkerConfig } from './config.js';
import { ControllerSession } from './controller-session.js';
import { createEngine } from './engines/index.js';
import type { Assignment } from '../common/protocol.js';
import { reportFailure, type JobFailure } from './failure-report.js';
import { localAddressToward } from './network.js';
import { ResourceMonitor } from './resources.js';
import { serveSchedulerRpc } from './scheduler-rpc.js';
import { Slots } from './slots.js';
import { MemoryBudget } from './memory-budget.js';

export interface WorkerAgent {
  readonly name: string;
  /** Stop taking work, let running jobs finish (up to drainMs, default --drain-ms), hand back the rest, leave. */
  stop(drainMs?: number): Promise<void>;
}

export async function startWorker(config: WorkerConfig, log: Logger): Promise<WorkerAgent> {
  const engine = await createEngine(config.engine, config.slots, config.engineThreads ?? undefined);
  const monitor = new ResourceMonitor();
  await monitor.start(1000);
  // the servers that may lead are expected on one network: the route to the first one tells this worker's address
  const first = config.controllers[0];
  const advertiseHost = config.advertiseHost ?? (await localAddressToward(first.host, first.port));
  const session = new ControllerSession(config, log);
  const report = (job: Assignment, failure: JobFailure): Promise<void> => reportFailure(session, job, failure, log);
  const slots = new Slots(
    config.slots,
    engine,
    report,
    log,
    config.jobDeadlineMs,
    new MemoryBudget(config.maxMemoryBytes),
    { imagesDir: config.imagesDir, timeouts: config.httpTimeouts },
    () => session.current?.api ?? null,
    config.prefetch,
  );
  const rpc = await serveSchedulerRpc(config, advertiseHost, session, slots, log);
  log.info(
    {
      worker: config.name,
      engine: engine.name,
      slots: config.slots,
      prefetch: config.prefetch,
      rpc: rpc.address,
      ...(config.imagesDir ? { images_dir: config.imagesDir } : {}),
      ...(config.secretFile ? { secret_from: config.secretFile } : {}),
    },
    'worker started',
  );
  session.start({
    rpcAddress: rpc.address,
    engine: engine.name,
    capabilities: engine.capabilities,
    monitor,
    jobs: slots,
  });

  let stopping = false;
  return {
    name: config.name,
    async stop(drainMs = config.drainMs) {
      if (stopping) return;
      stopping = true;
      const unstarted = await slots.drain(drainMs);
      await session.goodbye(unstarted);
      session.close();
      rpc.server.close();
      monitor.stop();
      await engine.close();
      log.info('worker stopped');
    },
  };
}
