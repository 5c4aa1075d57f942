import { Router } from 'express';
import type { Registry } from 'prom-client';
import { AppError } from '../../common/errors.js';
import { sameSecret } from '../../common/secrets.js';
import { bearerToken } from '../auth.js';

/**
 * GET /metrics in the Prometheus text format. With a metrics token configured, a scrape must send it
 * as `Authorization: Bearer <token>`; user tokens do not open it (and it opens nothing else).
 */
export function metricsRoutes(registry: Registry, metricsToken: string | null): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    if (metricsToken !== null && !sameSecret(bearerToken(req), metricsToken))
      throw new AppError('unauthorized', 'wrong metrics token');
    const text = await registry.metrics();
    res.set({ 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }).send(text);
  });
  return router;
}
