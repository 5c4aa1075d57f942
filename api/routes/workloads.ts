import { Router } from 'express';
import { FILTER_NAMES, isFilterName } from '../../common/filters/index.js';
import { AppError } from '../../common/errors.js';
import type { WorkloadDeleted } from '../../common/views.js';
import { tagsSchema } from '../../common/protocol.js';
import {
  createWorkload,
  DEFAULT_PAGE,
  findWorkload,
  listWorkloads,
  MAX_PAGE,
  removedView,
  removeWorkload,
  viewWorkload,
  type Controller,
} from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';
import type { ApiConfig } from '../config.js';
import { bodyField, fieldBody } from '../body.js';

interface WorkloadRequest {
  name: string | undefined;
  filter: string;
  tags: string[];
}

function optionalText(body: unknown, key: string): string | undefined {
  const value = bodyField(body, key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new AppError('bad_request', `"${key}" must be a string`);
  return value;
}

/** JSON, urlencoded or multipart fields, or no body at all: every field has a default. */
function parseWorkloadRequest(body: unknown): WorkloadRequest {
  const filter = optionalText(body, 'filter') ?? 'grayscale';
  if (!isFilterName(filter))
    throw new AppError(
      'unprocessable',
      `unknown filter "${filter.slice(0, 64)}": use one of ${FILTER_NAMES.join(', ')}`,
    );
  const rawTags = bodyField(body, 'tags');
  const tagList =
    typeof rawTags === 'string'
      ? rawTags
          .split(',')
          .map((tag) => tag.trim())
          .filter(Boolean)
      : (rawTags ?? []);
  const tags = tagsSchema.safeParse(tagList);
  if (!tags.success)
    throw new AppError(
      'bad_request',
      `"tags" must be a list (or comma-separated string) of up to 32 tags of letters, digits, "_", "." and "-"`,
    );
  return {
    name: optionalText(body, 'workload_name') ?? optionalText(body, 'name'),
    filter,
    tags: [...new Set(tags.data)],
  };
}

/** `limit` and `cursor` of GET /workloads, checked. */
function parsePage(query: Record<string, unknown>): { limit: number; cursor?: string } {
  const { limit: rawLimit, cursor } = query;
  let limit = DEFAULT_PAGE;
  if (rawLimit !== undefined) {
    limit = typeof rawLimit === 'string' && /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE))
      throw new AppError(
        'bad_request',
        `"limit" must be a whole number from 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`,
      );
  }
  if (cursor === undefined || cursor === '') return { limit };
  if (typeof cursor !== 'string' || cursor.length > 512)
    throw new AppError('bad_request', '"cursor" is not one this server gave out: pass next_cursor as it came');
  return { limit, cursor };
}

export function workloadRoutes(controller: Controller, config: ApiConfig): Router {
  const router = Router();
  const user = requireUser(controller.tokens);
  const body = fieldBody(
    config.maxBodyBytes,
    'a workload takes form fields only, no files: upload images to /images once the workload exists',
  );

  router.post('/workloads', user, ...body, async (req, res) => {
    const request = parseWorkloadRequest(req.body);
    const workload = createWorkload(
      controller.store,
      callerOf(res).claims.sub,
      request.name,
      request.filter,
      request.tags,
    );
    // its folder in the images space first: a record never names a folder that is not there
    try {
      await controller.images.makeFolder(workload);
      await controller.store.commit();
    } catch (error) {
      // the record was rolled back (a failed commit), or is taken back here (no folder)
      if (controller.store.data.workloads[workload.id] === workload) {
        removeWorkload(controller.store, workload);
        await controller.store.commit().catch(() => undefined);
      }
      controller.store.workloadIndex.releaseName(workload.name);
      await controller.images.removeFolder(workload).catch(() => undefined);
      throw error;
    }
    controller.lifecycle.created(workload);
    res.status(201).json(viewWorkload(controller, workload));
  });

  router.get('/workloads', user, (req, res) => {
    res.json(listWorkloads(controller, callerOf(res).claims.sub, parsePage(req.query)));
  });

  router.post('/workloads/:id/cancel', user, async (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
    await controller.lifecycle.cancel(workload);
    res.json(viewWorkload(controller, workload));
  });

  router.delete('/workloads/:id', user, async (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
    const removed = await controller.lifecycle.deleteWorkload(workload, 'user');
    const answer: WorkloadDeleted = { workload_id: workload.id, workload_name: workload.name, ...removedView(removed) };
    res.json(answer);
  });

  // the failed jobs start over; the body, if any, is ignored
  router.post('/workloads/:id/retry', user, async (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
    if (workload.cancelled_at)
      throw new AppError('conflict', `workload "${workload.name}" was cancelled: its jobs are not retried`);
    const retried = controller.jobs.retryFailed(workload.id);
    // the view as the retry left it: by the time the write is done, a worker may have run the jobs again
    const view = { ...viewWorkload(controller, workload), retried_jobs: retried.length };
    await controller.store.commit();
    res.json(view);
  });

  router.get('/workloads/:id', user, (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
    res.json(viewWorkload(controller, workload));
  });

  return router;
}
