import { Router } from 'express';
import type { Controller } from '../../controller/index.js';
import { callerOf, requireUser, requireUserOrUrlToken, urlTokenAnswer } from '../auth.js';
import type { EventHub } from '../events/index.js';

/**
 * GET /events: Server-Sent Events. EventSource cannot set headers, so it opens the stream with a
 * short-lived token from POST /events/token in the URL. The stream then lives as long as the user's
 * session (the user token that token was issued under), not the minute of the URL token.
 */
export function eventRoutes(controller: Controller, hub: EventHub): Router {
  const router = Router();
  router.post('/events/token', requireUser(controller.tokens), (_req, res) => {
    res.json(urlTokenAnswer(controller.tokens.issueForUrl(callerOf(res).claims, 'events'), '/events'));
  });
  router.get('/events', requireUserOrUrlToken(controller.tokens, 'events'), (_req, res) => {
    const { claims } = callerOf(res);
    hub.open(res, claims.sub, claims.session ?? claims);
  });
  return router;
}
