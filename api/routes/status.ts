import { Router } from 'express';
import { activeWorkloads, type Controller } from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';
import type { ApiConfig } from '../config.js';

export function statusRoutes(controller: Controller, config: ApiConfig): Router {
  const router = Router();
  router.get('/status', requireUser(controller.tokens), (_req, res) => {
    const workers = controller.workers.alive();
    res.json({
      system_name: config.systemName,
      server_time: new Date().toISOString(),
      active_workloads: activeWorkloads(controller, callerOf(res).claims.sub),
      workers: { alive: workers.length, slots: workers.reduce((sum, worker) => sum + worker.record.slots, 0) },
      // clients that can put bytes in the store themselves ask POST /uploads for a slot when this is true
      uploads: { slots: controller.uploads.offered },
      image_store: { kind: controller.imageStore.kind, available: controller.storeHealth.available },
    });
  });
  return router;
}
