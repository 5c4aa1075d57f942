import express, { type Express } from 'express';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { errorHandler, notFound } from './errors.js';
import { imageRoutes } from './routes/images.js';
import { sessionRoutes } from './routes/session.js';
import { statusRoutes } from './routes/status.js';
import { workloadRoutes } from './routes/workloads.js';

export function createApp(controller: Controller, config: ApiConfig, log: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // the client address the login rate limit counts: the TCP peer, unless a trusted proxy says otherwise
  app.set('trust proxy', config.trustProxy ?? false);
  app.use(sessionRoutes(controller, config, log));
  app.use(statusRoutes(controller, config));
  app.use(workloadRoutes(controller, config));
  app.use(imageRoutes(controller, config));
  app.use(notFound);
  app.use(errorHandler(log, config.maxUploadBytes));
  return app;
}
