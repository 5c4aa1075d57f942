import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import { findWorkload, listWorkloadImages, type Controller } from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';

/** GET /images?workload_id=ID: the images of one of the caller's workloads. */
export function imageListRoutes(controller: Controller): Router {
  const router = Router();
  router.get('/images', requireUser(controller.tokens), (req, res) => {
    const workloadId = req.query.workload_id;
    if (typeof workloadId !== 'string' || workloadId === '')
      throw new AppError('bad_request', 'name the workload: GET /images?workload_id=<id>');
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, workloadId);
    res.json({ workload_id: workload.id, images: listWorkloadImages(controller.store, workload) });
  });
  return router;
}
