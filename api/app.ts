import express, { type Express } from 'express';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { errorHandler, notFound } from './errors.js';
import { DEFAULT_EVENT_TIMINGS, EventHub } from './events/index.js';
import { archiveRoutes } from './routes/archive.js';
import { eventRoutes } from './routes/events.js';
import { imageListRoutes } from './routes/image-list.js';
import { imageRoutes } from './routes/images.js';
import { sessionRoutes } from './routes/session.js';
import { statusRoutes } from './routes/status.js';
import { workerRoutes } from './routes/workers.js';
import { workloadRoutes } from './routes/workloads.js';

/** The app's long-lived parts its server must end on close. */
export interface AppParts {
  events: EventHub;
}

export function createApp(
  controller: Controller,
  config: ApiConfig,
  log: Logger,
  parts: AppParts = { events: new EventHub(controller, log, { ...DEFAULT_EVENT_TIMINGS, ...config.events }) },
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // the client address the login rate limit counts: the TCP peer, unless a trusted proxy says otherwise
  app.set('trust proxy', config.trustProxy ?? false);
  app.use(sessionRoutes(controller, config, log));
  app.use(statusRoutes(controller, config));
  app.use(workloadRoutes(controller, config));
  app.use(archiveRoutes(controller));
  app.use(imageListRoutes(controller));
  app.use(imageRoutes(controller, config));
  app.use(workerRoutes(controller));
  app.use(eventRoutes(controller, parts.events));
  app.use(notFound);
  app.use(errorHandler(log, config.maxUploadBytes));
  return app;
}
