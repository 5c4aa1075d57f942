import { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { DEFAULT_EVENT_TIMINGS, EventHub } from './events/index.js';
import { systemMetrics, type SystemMetrics } from './metrics/index.js';

/** The app's long-lived parts: they listen to the controller, and the server ends them on close. */
export interface AppParts {
  events: EventHub;
  metrics: SystemMetrics;
}

export function createAppParts(controller: Controller, config: ApiConfig, log: Logger): AppParts {
  return {
    events: new EventHub(controller, log, { ...DEFAULT_EVENT_TIMINGS, ...config.events }),
    // a registry per app, not prom-client's global one: several servers may share a process (tests)
    metrics: systemMetrics(controller, new Registry()),
  };
}

export function closeAppParts(parts: AppParts): void {
  parts.events.close();
  parts.metrics.close();
}
