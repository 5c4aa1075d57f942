// The server process: api + controller + scheduler around one datastore (lowdb has exactly one writer).
import { startApi, type ApiConfig, type ApiServer } from '../api/index.js';
import type { Logger } from '../common/log.js';
import {
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

export async function startServer(config: ServerConfig, log: Logger): Promise<Server> {
  for (const [username, password] of Object.entries(config.users)) {
    const invalid = validateUsername(username) ?? validatePassword(password);
    if (invalid) throw new Error(`configured user "${username}": ${invalid}`);
  }
  const controller = await startController(config.controller, log.child({ component: 'controller' }));
  for (const [username, password] of Object.entries(config.users)) {
    if ((await controller.users.create(username, password)) === 'created')
      log.info({ user: username }, 'user created from configuration');
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
