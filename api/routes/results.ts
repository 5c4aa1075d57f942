// POST /results: a worker's stored results reported together, each completing its job as its own
// report (`POST /images?type=filtered&stored=true`) would; one request and, mostly, one commit for all.
import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { MAX_RESULTS_PER_REPORT, storedResultsSchema, type StoredResultAnswer } from '../../common/protocol.js';
import type { Controller } from '../../controller/index.js';
import { callerOf, requireWorker } from '../auth.js';
import { fieldBody } from '../body.js';
import type { ApiConfig } from '../config.js';
import { eachAtMost } from '../each-at-most.js';
import { errorAnswer } from '../errors.js';
import { requestLogger } from '../request-log.js';
import { storedResultKeeper } from '../stored-result.js';

/** The body's limit: a report of the most results, with room. */
const MAX_BODY_BYTES = 32 * 1024;
/** Results checked in the store at once (each reads its object's head). */
const CHECKS_AT_ONCE = 8;

export function resultRoutes(controller: Controller, config: ApiConfig, log: Logger): Router {
  const router = Router();
  const keep = storedResultKeeper(controller, config);
  const body = fieldBody(MAX_BODY_BYTES, 'a report of stored results is JSON, with no file');

  router.post('/results', requireWorker(controller.tokens), ...body, async (req, res) => {
    const parsed = storedResultsSchema.safeParse(req.body);
    if (!parsed.success)
      throw new AppError(
        'bad_request',
        `"results" must be a list of 1 to ${MAX_RESULTS_PER_REPORT} stored results, each {job_id, lease_id}`,
      );
    const { results } = parsed.data;
    if (new Set(results.map((result) => result.job_id)).size !== results.length)
      throw new AppError('bad_request', '"results" names a job twice');
    const workerId = callerOf(res).claims.sub;
    const itemLog = requestLogger(res, log);
    const answers = await eachAtMost(results, CHECKS_AT_ONCE, async (result): Promise<StoredResultAnswer> => {
      try {
        return { job_id: result.job_id, status: 201, image_id: (await keep(result, workerId)).id };
      } catch (error) {
        const { status, body: answer } = errorAnswer(error, itemLog, config.maxUploadBytes);
        return { job_id: result.job_id, status, ...answer };
      }
    });
    res.status(200).json({ results: answers });
  });
  return router;
}
