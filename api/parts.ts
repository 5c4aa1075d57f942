import { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { DEFAULT_EVENT_TIMINGS, DEFAULT_STREAM_LIMITS, EventHub } from './events/index.js';
import { HttpMetrics, systemMetrics, type SystemMetrics } from './metrics/index.js';

/** The app's long-lived parts: they listen to the controller, and the server ends them on close. */
export interface AppParts {
  events: EventHub;
  metrics: SystemMetrics;
  /** Counts requests: express's routes and the image routes, which bypass express, alike. */
  http: HttpMetrics;
}

export function createAppParts(controller: Controller, config: ApiConfig, log: Logger): AppParts {
  // a registry per app, not prom-client's global one: several servers may share a process (tests)
  const metrics = systemMetrics(controller, new Registry());
  return {
    events: new EventHub(
      controller,
      log,
      { ...DEFAULT_EVENT_TIMINGS, ...config.events },
      { ...DEFAULT_STREAM_LIMITS, ...config.streams },
    ),
    metrics,
    http: new HttpMetrics(metrics.registry),
  };
}

export function closeAppParts(parts: AppParts): void {
  parts.events.close();
  parts.metrics.close();
}
