import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { Counter, Histogram, type Registry } from 'prom-client';

const HTTP_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The route a request matched, as written in the router (`/workloads/:id`), so that ids do not make a
 * label value each; else what a handler put in `res.locals.route` (the dashboard's files: `static`);
 * else `unmatched`.
 */
export function routeOf(req: Request): string {
  const route: unknown = req.route;
  if (typeof route === 'object' && route !== null && 'path' in route && typeof route.path === 'string')
    return `${req.baseUrl}${route.path}`;
  const named: unknown = req.res?.locals.route;
  return typeof named === 'string' ? named : 'unmatched';
}

/** Counts every request by method, route and status, and its time until the response is done. */
export class HttpMetrics {
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'method' | 'route'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'dpip_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'dpip_http_request_duration_seconds',
      help: "Time from a request's arrival to the end of its response (event streams: until they close)",
      labelNames: ['method', 'route'],
      buckets: HTTP_SECONDS,
      registers: [registry],
    });
  }

  /** Counts the request when its response closes; `route` is read then (a router sets it on the way). */
  track(method: string, res: ServerResponse, route: () => string): void {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const label = route();
      // a response the client cut short has no status of its own: 499, as nginx counts it
      const status = res.writableFinished ? String(res.statusCode) : '499';
      this.requests.inc({ method, route: label, status });
      this.latency.observe({ method, route: label }, Number(process.hrtime.bigint() - started) / 1e9);
    });
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      this.track(req.method, res, () => routeOf(req));
      next();
    };
  }
}
