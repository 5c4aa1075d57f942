import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import type { ImageDeleted } from '../../common/views.js';
import { findWorkload, listWorkloadImages, removedView, type Controller } from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';

/** GET /images?workload_id=ID: the images of one of the caller's workloads; DELETE /images/{id}: one of them. */
export function imageListRoutes(controller: Controller): Router {
  const router = Router();
  router.get('/images', requireUser(controller.tokens), (req, res) => {
    const workloadId = req.query.workload_id;
    if (typeof workloadId !== 'string' || workloadId === '')
      throw new AppError('bad_request', 'name the workload: GET /images?workload_id=<id>');
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, workloadId);
    res.json({ workload_id: workload.id, images: listWorkloadImages(controller.store, workload) });
  });
  // the owner deletes one image: an original with its job and result, or a result alone
  router.delete('/images/:id', requireUser(controller.tokens), async (req, res) => {
    const image = controller.images.find(callerOf(res).claims.sub, String(req.params.id));
    const removed = await controller.lifecycle.deleteImage(image);
    const answer: ImageDeleted = {
      image_id: image.id,
      workload_id: image.workload_id,
      type: image.type,
      ...removedView(removed),
    };
    res.json(answer);
  });
  return router;
}
