import { Router } from 'express';
import { FILTER_NAMES, isFilterName } from '../../common/filters/index.js';
import { describeOperations, MAX_STEPS, parseChain, type Operation } from '../../common/operations/index.js';
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
  filter: string | null;
  operations: Operation[] | undefined;
  tags: string[];
}

/**
 * The chain of a request: a JSON list, or (in a form) its JSON text. Checked as a whole (422 naming the step),
 * and for sizes it asks for outright (a box of resize) against the pixel cap.
 */
function parseOperations(raw: unknown, maxPixels: number): Operation[] | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  let steps = raw;
  if (typeof raw === 'string') {
    try {
      steps = JSON.parse(raw);
    } catch {
      throw new AppError(
        'unprocessable',
        '"operations" must be a JSON list of steps: [{"op": "resize", "width": 640}]',
      );
    }
  }
  const parsed = parseChain(steps);
  if (!parsed.ok) throw new AppError('unprocessable', parsed.error);
  for (const [index, step] of parsed.chain.entries()) {
    if (step.op !== 'resize' || step.width === null || step.height === null) continue;
    if (step.fit !== 'inside' && step.fit !== 'outside' && step.width * step.height > maxPixels)
      throw new AppError(
        'unprocessable',
        `step ${index + 1} (resize) makes a ${step.width}x${step.height} image, more than the ${maxPixels} pixels ` +
          'allowed (--max-pixels)',
      );
  }
  return parsed.chain;
}

function optionalText(body: unknown, key: string): string | undefined {
  const value = bodyField(body, key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new AppError('bad_request', `"${key}" must be a string`);
  return value;
}

/** JSON, urlencoded or multipart fields, or no body at all: every field has a default. */
function parseWorkloadRequest(body: unknown, maxPixels: number): WorkloadRequest {
  const operations = parseOperations(bodyField(body, 'operations'), maxPixels);
  const given = optionalText(body, 'filter');
  if (operations && given !== undefined)
    throw new AppError('unprocessable', 'give "filter" or "operations", not both: a filter is a one-step chain');
  const filter = given ?? 'grayscale';
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
    filter: operations ? null : filter,
    operations,
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
    const request = parseWorkloadRequest(req.body, config.maxPixels);
    const workload = createWorkload(
      controller.store,
      callerOf(res).claims.sub,
      request.name,
      request.filter,
      request.tags,
      request.operations,
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

  // what every operation takes: clients build their forms from it
  router.get('/operations', (_req, res) => {
    res.json({ operations: describeOperations(), max_steps: MAX_STEPS });
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
