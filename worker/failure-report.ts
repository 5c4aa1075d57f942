import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../common/backoff.js';
import type { Logger } from '../common/log.js';
import { acceptedResultSchema, CONTROLLER_METHODS, type Assignment } from '../common/protocol.js';
import { CONTROLLER_RETRY, type ControllerSession } from './controller-session.js';
import type { JobOutcome } from './job-runner.js';

export type JobFailure = Extract<JobOutcome, { kind: 'failed' }>;

/** A failure must arrive: the `fail` call is retried until the controller answers or the worker stops. */
export async function reportFailure(
  session: ControllerSession,
  job: Assignment,
  failure: JobFailure,
  log: Logger,
): Promise<void> {
  const storeUnavailable = failure.storeUnavailable === true;
  log.warn(
    {
      job_id: job.job_id,
      error: failure.error,
      retryable: failure.retryable,
      ...(storeUnavailable ? { store_unavailable: true } : {}),
    },
    'job failed',
  );
  for (let attempt = 1; !session.closed; attempt++) {
    const token = session.token;
    const rpc = session.session;
    if (token && rpc) {
      try {
        const result = await rpc.call(
          CONTROLLER_METHODS.fail,
          {
            token,
            job_id: job.job_id,
            lease_id: job.lease_id,
            error: failure.error,
            retryable: failure.retryable,
            // the store's failure, not the job's: the controller gives the attempt back and waits for the store
            ...(storeUnavailable ? { store_unavailable: true } : {}),
          },
          acceptedResultSchema,
        );
        if (!result.accepted) log.info({ job_id: job.job_id }, 'result not accepted: the lease had moved on');
        return;
      } catch (error) {
        log.debug({ job_id: job.job_id, error: String(error) }, 'report failed, retrying');
      }
    }
    await sleep(backoffMs(CONTROLLER_RETRY, attempt));
  }
}
