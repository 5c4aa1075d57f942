import { EventEmitter } from 'node:events';
import { bindPublisher, serveRpc, type Publisher, type RpcServer } from '../common/bus/index.js';
import { ANNOUNCE, type Announcement } from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import { rpcPortOf, type ControllerConfig } from './config.js';
import { ImageLibrary } from './images.js';
import { JobBook, type JobChange } from './job-book.js';
import { controllerMethods } from './rpc-handlers.js';
import { openStore, type Store } from './store/index.js';
import { createTokens, loadSigningSecret, type Tokens } from './tokens.js';
import { createUsers, type Users } from './users.js';
import { WorkerRegistry } from './workers/index.js';
import { LogThrottle } from '../common/log-throttle.js';

export interface ControllerEvents {
  /** Something changed that may let the scheduler place work. */
  work: [];
  /** A job changed state (emitted as it happens: listeners must be quick and must not throw). */
  job: [JobChange];
}

export interface Controller {
  readonly config: ControllerConfig;
  readonly store: Store;
  readonly tokens: Tokens;
  readonly users: Users;
  readonly images: ImageLibrary;
  readonly jobs: JobBook;
  readonly workers: WorkerRegistry;
  readonly events: EventEmitter<ControllerEvents>;
  close(): Promise<void>;
}

const SWEEP_MS = 250;

export async function startController(config: ControllerConfig, log: Logger): Promise<Controller> {
  const store = await openStore(config.dataDir);
  const tokens = createTokens(store, await loadSigningSecret(config.dataDir), {
    user: config.userTokenTtlSeconds,
    worker: config.workerTokenTtlSeconds,
  });
  const events = new EventEmitter<ControllerEvents>();
  let workPending = false;
  const jobs = new JobBook(
    store,
    config.retry,
    config.leaseMs,
    () => {
      // many changes in one tick wake the scheduler once
      if (workPending) return;
      workPending = true;
      setImmediate(() => {
        workPending = false;
        events.emit('work');
      });
    },
    (change) => events.emit('job', change),
  );
  const registry = new WorkerRegistry();
  const images = new ImageLibrary(store, jobs, config.imagesDir);
  await images.prepare();

  const invalidMessages = new LogThrottle();
  const onBadMessage = (reason: string): void => {
    if (invalidMessages.next()) log.warn({ reason, count: invalidMessages.count }, 'rejected a bad message on the bus');
  };

  const bindHost = config.bindHost === '0.0.0.0' ? '*' : config.bindHost;
  const publisher: Publisher = bindPublisher(`tcp://${bindHost}:${config.port}`);
  let rpc: RpcServer;
  try {
    rpc = serveRpc(
      `tcp://${bindHost}:${rpcPortOf(config)}`,
      controllerMethods({ config, store, tokens, registry, jobs, log }),
      onBadMessage,
      (method, error) =>
        log.error(
          { method, error: error instanceof Error ? error.stack : String(error) },
          'a bus call failed inside the controller',
        ),
    );
  } catch (error) {
    publisher.close();
    throw error;
  }

  const announce = (): void => {
    const message: Announcement = {
      system_name: config.systemName,
      register_port: rpcPortOf(config),
      time: new Date().toISOString(),
    };
    publisher.publish(ANNOUNCE, message);
  };
  announce();
  const announcer = setInterval(announce, config.announceMs);

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const worker of registry.markSilentDead(config.leaseMs, now)) {
      log.warn(
        { worker: worker.record.name, silent_ms: now - worker.last_seen },
        'worker missed its heartbeats: marked dead',
      );
      jobs.releaseAll(worker.record.id, `worker ${worker.record.name} stopped sending heartbeats`);
    }
    const expired = jobs.expire(now);
    if (expired.length > 0) log.warn({ jobs: expired.map((job) => job.id) }, 'leases expired: jobs requeued');
    void store.commit().catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
  }, SWEEP_MS);

  log.info({ pub: config.port, rpc: rpcPortOf(config) }, 'controller listening');

  return {
    config,
    store,
    tokens,
    users: createUsers(store),
    images,
    jobs,
    workers: registry,
    events,
    async close() {
      clearInterval(announcer);
      clearInterval(sweeper);
      rpc.close();
      publisher.close();
      await store.close();
    },
  };
}
