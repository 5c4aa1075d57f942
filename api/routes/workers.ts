import { Router } from 'express';
import type { Controller } from '../../controller/index.js';
import { requireUser } from '../auth.js';
import { workerViews } from '../views.js';

export function workerRoutes(controller: Controller): Router {
  const router = Router();
  router.get('/workers', requireUser(controller.tokens), (_req, res) => {
    res.json({ workers: workerViews(controller) });
  });
  return router;
}
