import { Router } from 'express';
import type { Controller } from '../../controller/index.js';
import { requireUser } from '../auth.js';
import { AppError } from '../../common/errors.js';
import { workerDetail, workerViews } from '../views.js';

export function workerRoutes(controller: Controller): Router {
  const router = Router();
  router.get('/workers', requireUser(controller.tokens), (_req, res) => {
    res.json({ workers: workerViews(controller) });
  });
  router.get('/workers/:id', requireUser(controller.tokens), (req, res) => {
    const id = String(req.params.id);
    const worker = workerDetail(controller, id);
    if (!worker) throw new AppError('not_found', `no worker with id "${id.slice(0, 100)}"`);
    res.json(worker);
  });
  return router;
}
