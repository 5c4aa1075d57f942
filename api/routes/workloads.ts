import { Router } from 'express';
import { FILTER_NAMES, isFilterName } from '../../common/filters/index.js';
import { AppError } from '../../common/errors.js';
import { tagsSchema } from '../../common/protocol.js';
import { createWorkload, findWorkload, listWorkloads, viewWorkload, type Controller } from '../../controller/index.js';
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
    await controller.store.commit();
    res.status(201).json(viewWorkload(controller, workload));
  });

  router.get('/workloads', user, (_req, res) => {
    res.json({ workloads: listWorkloads(controller, callerOf(res).claims.sub) });
  });

  // the failed jobs start over; the body, if any, is ignored
  router.post('/workloads/:id/retry', user, async (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
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
