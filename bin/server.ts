// The server process: api + controller + scheduler around one datastore (lowdb has exactly one writer). With
// PostgreSQL, several servers may share the database: the one that leads runs everything, the others forward
// their API to it and wait to take over.
import { hostname } from 'node:os';
import {
  openListener,
  startApi,
  startStandbyApi,
  type ApiConfig,
  type ApiServer,
  type HttpListener,
} from '../api/index.js';
import type { Logger } from '../common/log.js';
import {
  DEFAULT_MIN_PASSWORD_LENGTH,
  startController,
  validatePassword,
  validateUsername,
  type Controller,
  openLeadership,
  type ControllerConfig,
  type Leadership,
} from '../controller/index.js';
import { startScheduler, type Scheduler, type SchedulerConfig } from '../scheduler/index.js';

export interface ServerConfig {
  controller: ControllerConfig;
  api: ApiConfig;
  scheduler: SchedulerConfig;
  /** Users created at start if missing: name -> password. */
  users: Record<string, string>;
}

export interface Server {
  readonly controller: Controller;
  readonly api: ApiServer;
  readonly scheduler: Scheduler;
  /**
   * Settles (with why) if this server loses the lead of a shared PostgreSQL database: another server may lead
   * already, so this one must stop at once. Never settles otherwise.
   */
  readonly lost: Promise<string>;
  close(): Promise<void>;
}

/**
 * Creates the configured users that do not exist yet. A user that exists keeps the password it has,
 * even one shorter than the minimum of today (it was set under an older one).
 */
async function createConfiguredUsers(
  controller: Controller,
  users: Record<string, string>,
  minPasswordLength: number,
  log: Logger,
): Promise<void> {
  const missing = Object.entries(users).filter(([username]) => !controller.users.exists(username));
  for (const [username, password] of missing) {
    const invalid = validatePassword(password, minPasswordLength);
    if (invalid) throw new Error(`configured user "${username}": ${invalid}`);
  }
  for (const [username, password] of missing) {
    if ((await controller.users.create(username, password)) === 'created')
      log.info({ user: username }, 'user created from configuration');
  }
}

export interface StartOptions {
  /**
   * A PostgreSQL datastore that cannot be reached is waited for (tried every second, the API answering 503
   * meanwhile) instead of failing the start: for a server that stepped down and starts again.
   */
  waitForDatastore?: boolean;
  /**
   * The API's port, kept open across a step-down and a new lead (PostgreSQL only): requests are answered by the
   * forwarding API, then by the leader's, never refused. Without it the server opens its own, closed with it.
   */
  listener?: HttpListener;
}

const DATASTORE_RETRY_MS = 1000;

/**
 * Starts the server. On a PostgreSQL datastore it first takes the lead: while another server leads, this one
 * forwards its API there (startStandbyApi) and resolves only once it leads.
 */
export async function startServer(config: ServerConfig, log: Logger, options: StartOptions = {}): Promise<Server> {
  const datastore = config.controller.datastore;
  if (datastore?.kind !== 'postgres') return startLeader(config, log, new Promise<string>(() => undefined));
  const address = leaderAddress(config);
  const leadershipLog = log.child({ component: 'leadership' });
  const listener = options.listener ?? (await openListener(config.api, log.child({ component: 'api' })));
  const closeOwnListener = async (): Promise<void> => {
    if (!options.listener) await listener.close();
  };
  let leadership: Leadership | null = null;
  /** Where to forward: the leader's API, never this server's own (a row it wrote before it stepped down). */
  const leaderApiUrl = async (): Promise<string | null> => {
    const url = leadership ? ((await leadership.leader())?.apiUrl ?? null) : null;
    return url === address.apiUrl ? null : url;
  };
  // forwards until this server's own API serves the port (503 while no leader is known, this one included)
  startStandbyApi(listener, leaderApiUrl, log.child({ component: 'standby' }));
  try {
    for (let attempt = 1; !leadership; attempt++) {
      try {
        leadership = await openLeadership(datastore.url, { log: leadershipLog });
      } catch (error) {
        if (!options.waitForDatastore) throw error;
        if (attempt === 1) log.warn({ error: String(error) }, 'waiting for the datastore');
        await new Promise((resolve) => setTimeout(resolve, DATASTORE_RETRY_MS));
      }
    }
    let epoch = await leadership.tryLead(address);
    if (epoch === null) {
      log.info('another server leads: forwarding the API to it, and waiting to lead');
      epoch = await leadership.waitToLead(address);
    }
    const held = leadership;
    const lost = new Promise<string>((resolve) => held.onLost(resolve));
    const leading: ServerConfig = {
      ...config,
      controller: { ...config.controller, datastore: { ...datastore, leaderEpoch: epoch } },
    };
    const server = await startLeader(leading, log, lost, listener);
    // memory and the database disagree (a row changed behind this server's back, another leader): step down and
    // read every record again rather than go on from a state that is not the database's
    server.controller.store.onNeedsReload((reason) => held.relinquish(reason));
    return {
      ...server,
      async close() {
        await server.close();
        await held.close();
        await closeOwnListener();
      },
    };
  } catch (error) {
    await leadership?.close();
    await closeOwnListener();
    throw error;
  }
}

/** Where this server is reached when it leads: its API (for the others' forwarding) and its controller. */
function leaderAddress(config: ServerConfig): { apiUrl: string; controllerHost: string; controllerPort: number } {
  const bound = config.controller.bindHost;
  const host = ['0.0.0.0', '::', '*', ''].includes(bound) ? hostname() : bound;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    apiUrl: config.controller.publicApiUrl ?? `http://${urlHost}:${config.api.port}`,
    controllerHost: host,
    controllerPort: config.controller.port,
  };
}

async function startLeader(
  config: ServerConfig,
  log: Logger,
  lost: Promise<string>,
  listener?: HttpListener,
): Promise<Server> {
  const minPasswordLength = config.api.minPasswordLength ?? DEFAULT_MIN_PASSWORD_LENGTH;
  for (const [username, password] of Object.entries(config.users)) {
    // the minimum applies to the users about to be created, checked once the datastore is open
    const invalid = validateUsername(username) ?? validatePassword(password, 0);
    if (invalid) throw new Error(`configured user "${username}": ${invalid}`);
  }
  const controller = await startController(
    // the workers' engines decode nothing larger than the API accepts
    { maxPixels: config.api.maxPixels, ...config.controller },
    log.child({ component: 'controller' }),
  );
  try {
    await createConfiguredUsers(controller, config.users, minPasswordLength, log);
  } catch (error) {
    await controller.close();
    throw error;
  }
  const scheduler = startScheduler(controller.scheduling, config.scheduler, log.child({ component: 'scheduler' }));
  let api: ApiServer;
  try {
    api = await startApi(controller, config.api, log.child({ component: 'api' }), listener);
  } catch (error) {
    scheduler.close();
    await controller.close();
    throw error;
  }
  return {
    controller,
    api,
    scheduler,
    lost,
    async close() {
      await api.close();
      scheduler.close();
      await controller.close();
    },
  };
}
