import { EventEmitter } from 'node:events';
import { bindPublisher, serveRpc, type Publisher, type RpcServer } from '../common/bus/index.js';
import {
  ANNOUNCE,
  REGISTER_MAX_BYTES,
  SESSION_MAX_BYTES,
  sessionTokenOf,
  type Announcement,
} from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import { rpcPortOf, sessionPortOf, type ControllerConfig } from './config.js';
import { DiskRoom } from './disk-room.js';
import { openImageStore, type ImageStore } from './image-store/index.js';
import { DirectTransfers } from './direct-transfers.js';
import { imageStoreConfigOf } from './config.js';
import { PROBE_KEY, probeOf, StoreHealth, watchedStore } from './store-health.js';
import { UPLOAD_SLOT_MS, UploadSlots } from './upload-slots.js';
import { ImageLibrary } from './images.js';
import { NO_QUOTAS, UserQuotas } from './quotas.js';
import { JobBook, type JobChange, type JobRefusal } from './job-book.js';
import { LeftoverRemovals } from './leftover-removals.js';
import { Lifecycle, type WorkloadEvent } from './lifecycle.js';
import { startRetention, type Retention } from './retention.js';
import { startLeaseSweeper, type LeaseSweeper } from './lease-sweeper.js';
import { schedulingPort, type SchedulingPort } from './scheduling.js';
import { controllerMethods } from './rpc-handlers.js';
import { openDatastore, type Store } from './store/index.js';
import { createTokens, type Tokens } from './tokens.js';
import { createUsers, type Users } from './users.js';
import { WorkerActivityBook, WorkerHistory, WorkerRegistry } from './workers/index.js';
import { LogThrottle } from '../common/log-throttle.js';

export interface ControllerEvents {
  /** Something changed that may let the scheduler place work. */
  work: [];
  /** A job changed state (emitted as it happens: listeners must be quick and must not throw). */
  job: [JobChange];
  /** A job transition was refused (a late worker, a second request): counted by reason. */
  refused: [JobRefusal];
  /** A workload was made, changed by its owner, or deleted. */
  workload: [WorkloadEvent];
}

export interface Controller {
  readonly config: ControllerConfig;
  readonly store: Store;
  readonly tokens: Tokens;
  readonly users: Users;
  readonly images: ImageLibrary;
  /** Where image bytes live (the local folder or object storage), watched by `storeHealth`. */
  readonly imageStore: ImageStore;
  /** The origin presigned URLs point to (the dashboard may connect there); null when the store has none. */
  readonly storeOrigin: string | null;
  /** Whether the image store answers; while it does not, no job is given out. */
  readonly storeHealth: StoreHealth;
  /** The byte paths that skip the API (presigned URLs, paths) and the check of what workers stored. */
  readonly transfers: DirectTransfers;
  /** Uploads around the server: a presigned PUT, then a confirm (object storage only). */
  readonly uploads: UploadSlots;
  readonly jobs: JobBook;
  /** Cancelling and deleting workloads and images. */
  readonly lifecycle: Lifecycle;
  /** Deletes idle finished workloads in the background (`--retention`); null when off. */
  readonly retention: Retention | null;
  readonly workers: WorkerRegistry;
  /** Each worker's resource history, in the datastore (the last hour in full, a week by the minute). */
  readonly history: WorkerHistory;
  /** What each worker did (registrations, deaths, jobs, bytes), in the datastore. */
  readonly activity: WorkerActivityBook;
  /** What the scheduler reads and writes. */
  readonly scheduling: SchedulingPort;
  /** The liveness and stalled-job sweep (it runs on its own timer). */
  readonly sweeper: LeaseSweeper;
  readonly events: EventEmitter<ControllerEvents>;
  close(): Promise<void>;
}

const SWEEP_MS = 250;
/** How often finished minutes of history and changed activity counts are looked for (and written). */
const RECORD_MS = 10_000;

export async function startController(config: ControllerConfig, log: Logger): Promise<Controller> {
  const store = await openDatastore(config.datastore ?? { kind: 'lowdb' }, config.dataDir, log);
  const { recovered } = store.stats();
  if (recovered.skipped > 0) {
    log.warn(recovered, 'the datastore journal held lines that could not be applied: skipped them, kept the rest');
  }
  const tokens = createTokens(store, await store.signingKey(), {
    user: config.userTokenTtlSeconds,
    worker: config.workerTokenTtlSeconds,
    url: config.urlTokenTtlSeconds,
  });
  const events = new EventEmitter<ControllerEvents>();
  let workPending = false;
  const jobs = new JobBook(store, config.retry, config.leaseMs, config.jobTimeoutMs, {
    onWork() {
      // many changes in one tick wake the scheduler once
      if (workPending) return;
      workPending = true;
      setImmediate(() => {
        workPending = false;
        events.emit('work');
      });
    },
    onChange: (change) => events.emit('job', change),
    onRefused: (refusal) => events.emit('refused', refusal),
  });
  const history = new WorkerHistory(store);
  const activity = new WorkerActivityBook(store);
  const registry = new WorkerRegistry({
    registered: (worker, now) => activity.registered(worker.record.id, now),
    heard(worker, resources, now) {
      history.record(worker.record.id, resources, now);
      activity.heard(worker.record.id, resources, now);
    },
    died: (worker, now) => activity.died(worker.record.id, now),
    back: (worker, now) => activity.back(worker.record.id, now),
    left: (worker, now) => activity.left(worker.record.id, now),
  });
  events.on('job', (change) => activity.jobChanged(change));
  // a worker whose registration did not commit is not registered
  store.onRollback((restored) => {
    for (const id of restored.get('workers') ?? []) if (!Object.hasOwn(store.data.workers, id)) registry.remove(id);
    const records = Object.fromEntries([...restored].map(([collection, keys]) => [collection, keys.length]));
    log.error(
      { records, datastore: store.kind },
      store.kind === 'postgres'
        ? 'a datastore commit failed (is PostgreSQL reachable?): the changes it did not keep were rolled back'
        : 'a datastore commit failed (is the disk full?): the changes not on disk were rolled back',
    );
  });
  const openedStore = await openImageStore(imageStoreConfigOf(config));
  await openedStore.check();
  const removals = new LeftoverRemovals(log);
  const health = new StoreHealth(
    probeOf(openedStore),
    () => {
      jobs.poke();
      removals.retryNow();
    },
    log,
  );
  const imageStore = watchedStore(openedStore, health);
  const room = new DiskRoom(
    openedStore.kind === 'local' ? [config.imagesDir, config.dataDir] : [config.dataDir],
    config.minFreeDiskBytes,
  );
  const quotas = new UserQuotas(config.userQuotas ?? NO_QUOTAS);
  const images = new ImageLibrary(store, jobs, imageStore, room, quotas);
  const lifecycle = new Lifecycle(store, jobs, images, (event) => events.emit('workload', event), removals);
  // what was handed out before a restart (presigned PUTs, upload slots) may still be written: left a while
  const orphans = await images.prepare(imageStore.presigns ? config.jobTimeoutMs + UPLOAD_SLOT_MS : 0);
  if (orphans > 0) log.warn({ files: orphans }, 'removed image files that no record points at');
  const folderId = await imageStore.folderId();
  const storeOrigin = imageStore.presigns ? new URL((await imageStore.presign('GET', PROBE_KEY, 60)).url).origin : null;
  const transfers = new DirectTransfers(store, imageStore, jobs, config.jobTimeoutMs, log);
  events.on('job', (change) => transfers.leaseEnded(change));
  const uploads = new UploadSlots(store, imageStore, log);

  const invalidMessages = new LogThrottle();
  const onBadMessage = (reason: string): void => {
    if (invalidMessages.next()) log.warn({ reason, count: invalidMessages.count }, 'rejected a bad message on the bus');
  };

  const bindHost = config.bindHost === '0.0.0.0' ? '*' : config.bindHost;
  const publisher: Publisher = bindPublisher(`tcp://${bindHost}:${config.port}`);
  const methods = controllerMethods({ config, store, tokens, registry, jobs, folderId, health, log });
  const onInternalError = (method: string, error: unknown): void =>
    log.error(
      { method, error: error instanceof Error ? error.stack : String(error) },
      'a bus call failed inside the controller',
    );
  const servers: RpcServer[] = [];
  try {
    // registration: open to anyone who can reach it, so it takes small messages only
    servers.push(
      serveRpc(`tcp://${bindHost}:${rpcPortOf(config)}`, methods, onBadMessage, onInternalError, {
        maxMessageBytes: REGISTER_MAX_BYTES,
      }),
    );
    // the session socket: a REP socket answers one message at a time, so heartbeats get a socket of their own
    // that junk on the registration socket cannot hold up; what carries no valid worker token is refused unread
    const { register: _register, ...sessionMethods } = methods;
    servers.push(
      serveRpc(`tcp://${bindHost}:${sessionPortOf(config)}`, sessionMethods, onBadMessage, onInternalError, {
        maxMessageBytes: SESSION_MAX_BYTES,
        admit: (message) => {
          const token = sessionTokenOf(message);
          return token !== null && tokens.verify(token)?.scope === 'worker';
        },
      }),
    );
  } catch (error) {
    for (const server of servers) server.close();
    publisher.close();
    throw error;
  }
  const session = servers[1]!;

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

  const sweeper = startLeaseSweeper(
    { registry, jobs, store },
    { leaseMs: config.leaseMs, heartbeatMs: config.heartbeatMs, intervalMs: SWEEP_MS, sessionBusyMs: session.busyMs },
    log,
  );

  // not synced: a crash loses at most the last minute of history and of counts
  const recorder = setInterval(() => {
    const now = Date.now();
    const changed = history.tick(now);
    if (activity.tick(now) || changed) {
      store
        .commit({ durable: false })
        .catch((error: unknown) => log.error({ error: String(error) }, 'datastore write failed'));
    }
  }, RECORD_MS);

  log.info({ pub: config.port, rpc: rpcPortOf(config), session: sessionPortOf(config) }, 'controller listening');
  const books = { store, jobs, config };
  const retention = config.retentionMs ? startRetention(books, lifecycle, config.retentionMs, log) : null;

  return {
    config,
    store,
    tokens,
    users: createUsers(store),
    images,
    jobs,
    lifecycle,
    retention,
    workers: registry,
    history,
    activity,
    sweeper,
    imageStore,
    storeOrigin,
    storeHealth: health,
    transfers,
    uploads,
    scheduling: schedulingPort(
      { store, jobs, registry, transfers, storeAvailable: () => health.available },
      (listener) => {
        events.on('work', listener);
        return () => events.off('work', listener);
      },
      (listener) => {
        events.on('job', listener);
        return () => events.off('job', listener);
      },
    ),
    events,
    async close() {
      clearInterval(announcer);
      clearInterval(recorder);
      sweeper.stop();
      retention?.stop();
      removals.close();
      health.close();
      transfers.close();
      uploads.stop();
      for (const server of servers) server.close();
      publisher.close();
      history.flush();
      activity.flush(Date.now());
      await store.close();
    },
  };
}
