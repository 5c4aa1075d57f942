import express, { type Express } from 'express';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { errorHandler, notFound } from './errors.js';
import { createAppParts, type AppParts } from './parts.js';
import { requestLog } from './request-log.js';
import { archiveRoutes } from './routes/archive.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { eventRoutes } from './routes/events.js';
import { imageListRoutes } from './routes/image-list.js';
import { metricsRoutes } from './routes/metrics.js';
import { sessionRoutes } from './routes/session.js';
import { statusRoutes } from './routes/status.js';
import { workerRoutes } from './routes/workers.js';
import { resultRoutes } from './routes/results.js';
import { uploadRoutes } from './routes/uploads.js';
import { workloadRoutes } from './routes/workloads.js';

export function createApp(
  controller: Controller,
  config: ApiConfig,
  log: Logger,
  parts: AppParts = createAppParts(controller, config, log),
): Express {
  const app = express();
  app.disable('x-powered-by');
  // JSON answers describe state that changes under the client: an ETag (a hash of every body) buys nothing
  app.set('etag', false);
  app.set('query parser', 'simple');
  // the client address the login rate limit counts: the TCP peer, unless a trusted proxy says otherwise
  app.set('trust proxy', config.trustProxy ?? false);
  app.use(requestLog(log));
  app.use(parts.http.middleware());
  app.use(metricsRoutes(parts.metrics.registry, config.metricsToken ?? null));
  app.use(sessionRoutes(controller, config, log));
  app.use(statusRoutes(controller, config));
  app.use(workloadRoutes(controller, config));
  app.use(uploadRoutes(controller, config, log));
  app.use(resultRoutes(controller, config, log));
  app.use(archiveRoutes(controller, log));
  app.use(imageListRoutes(controller));
  app.use(workerRoutes(controller));
  app.use(eventRoutes(controller, parts.events));
  app.use(dashboardRoutes(controller.storeOrigin));
  app.use(notFound);
  app.use(errorHandler(log, config.maxUploadBytes));
  return app;
}
