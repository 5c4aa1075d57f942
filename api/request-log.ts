import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../common/log.js';
import { routeOf } from './metrics/index.js';

// a caller's own id (a proxy's, a client's) is kept if it is short and plain; anything else gets a new one
const GIVEN_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * Gives every request an id (the caller's X-Request-Id if usable, else a new UUID), sends it back in
 * X-Request-Id, and puts a child logger carrying it in `res.locals.log` for every line logged about the
 * request. Each request is logged at debug level when its response ends.
 */
export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    res.locals.log = trackRequest(
      log,
      req,
      res,
      () => req.path,
      () => routeOf(req),
    );
    next();
  };
}

/**
 * The same for a request answered on node:http directly: the id, the header, the child logger, and
 * the debug line when the response ends. `path` is the path only: a query string may carry a token.
 */
export function trackRequest(
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
  path: () => string,
  route: () => string,
): Logger {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && GIVEN_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  const child = log.child({ request_id: id });
  if (child.isLevelEnabled('debug')) {
    const started = process.hrtime.bigint();
    res.once('close', () =>
      child.debug(
        {
          method: req.method,
          path: path(),
          route: route(),
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      ),
    );
  }
  return child;
}

/** The request's logger (with its id), or `fallback` before requestLog ran. */
export function requestLogger(res: Response, fallback: Logger): Logger {
  const log: unknown = res.locals.log;
  return log === undefined ? fallback : (log as Logger);
}
