import { Router } from 'express';
import type { Controller } from '../../controller/index.js';
import { bearerOrQueryToken, callerOf, requireUser } from '../auth.js';
import type { EventHub } from '../events/index.js';

/** GET /events: Server-Sent Events. EventSource cannot set headers, so the token may come as ?token=. */
export function eventRoutes(controller: Controller, hub: EventHub): Router {
  const router = Router();
  router.get('/events', requireUser(controller.tokens, bearerOrQueryToken), (req, res) => {
    hub.open(res, callerOf(res).claims.sub, bearerOrQueryToken(req));
  });
  return router;
}
