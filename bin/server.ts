// The server process: api + controller + scheduler around one datastore (lowdb has exactly one writer).
import { startApi, type ApiConfig, type ApiServer } from '../api/index.js';
import type { Logger } from '../common/log.js';
import {
  DEFAULT_MIN_PASSWORD_LENGTH,
  startController,
  validatePassword,
  validateUsername,
  type Controller,
  type ControllerConfig,
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

export async function startServer(config: ServerConfig, log: Logger): Promise<Server> {
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
    api = await startApi(controller, config.api, log.child({ component: 'api' }));
  } catch (error) {
    scheduler.close();
    await controller.close();
    throw error;
  }
  return {
    controller,
    api,
    scheduler,
    async close() {
      await api.close();
      scheduler.close();
      await controller.close();
    },
  };
}
