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
  if (typeof route === 'object' && route !== null && 'path' in route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  const named: unknown = req.res?.locals.route;
  return typeof named === 'string' ? named : 'unmatched';
}

/** Counts every request by method, route and status, and its time until the response is done. */
export function httpMetrics(registry: Registry): RequestHandler {
  const requests = new Counter({ name: 'dpip_http_requests_total', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'dpip_http_request_duration_seconds',
    help: 'Time from a request\'s arrival to the end of its response (event streams: until they close)',
    labelNames: ['method', 'route'],
    buckets: HTTP_SECONDS,
    registers: [registry],
  });
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const route = routeOf(req);
      // a response the client cut short has no status of its own: 499, as nginx counts it
      const status = res.writableFinished ? String(res.statusCode) : '499';
      requests.inc({ method: req.method, route, status });
      latency.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}
