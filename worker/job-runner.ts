import { isFilterName } from '../common/filters/index.js';
import type { Logger } from '../common/log.js';
import { canRun, chainOfFilter, type Operation } from '../common/operations/index.js';
import type { Assignment } from '../common/protocol.js';
import { formatDuration } from '../common/units.js';
import { ApiError, type ApiClient } from './api-client.js';
import { ChainError, UndecodableImageError, type FilterEngine } from './engines/index.js';

export type JobOutcome =
  | { kind: 'done'; imageId: string }
  | { kind: 'failed'; error: string; retryable: boolean }
  | { kind: 'dropped'; reason: string }; // cancelled, or the lease moved on: nothing to report

/** How long a worker works on one job before it gives up on it (--job-deadline); under the server's --job-timeout. */
export const DEFAULT_JOB_DEADLINE_MS = 5 * 60_000;

export interface RunOptions {
  /** The job is given up this long after it started (--job-deadline). */
  deadlineMs?: number;
  /** The largest image the engine decodes (the API's --max-pixels); absent: no limit of the engine's own. */
  maxPixels?: number;
}

/** What the job runs: its chain of operations, or its course filter's one-step chain; null for an unknown filter. */
export function chainOf(job: Assignment): Operation[] | null {
  if (job.operations) return job.operations;
  return job.filter !== undefined && isFilterName(job.filter) ? chainOfFilter(job.filter) : null;
}

/**
 * Download, run the chain, upload: one job from start to end. Never throws; the outcome says what happened.
 * `onUploading` is told when the result is on its way: the answered upload completes the job.
 * After `deadlineMs` the job is given up, whatever it is doing: its call is cut, its engine work abandoned
 * (see ApplyOptions), and it fails as retryable.
 */
export async function runJob(
  job: Assignment,
  api: ApiClient,
  engine: FilterEngine,
  signal: AbortSignal,
  log: Logger,
  onUploading: () => void = () => undefined,
  { deadlineMs = DEFAULT_JOB_DEADLINE_MS, maxPixels }: RunOptions = {},
): Promise<JobOutcome> {
  const chain = chainOf(job);
  if (!chain) return { kind: 'failed', error: `this worker has no filter "${job.filter ?? 'none'}"`, retryable: false };
  // the scheduler sends a job only to a worker that can run it; should one come anyway, another may take it
  const missing = canRun(chain, engine.capabilities);
  if (missing)
    return { kind: 'failed', error: `this worker's engine (${engine.name}) cannot ${missing}`, retryable: true };
  const started = performance.now();
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error('the job deadline passed')), deadlineMs);
  const work = AbortSignal.any([signal, deadline.signal]);
  let stage = 'downloading its original';
  try {
    const original = await api.download(job.image_id, work);
    const downloaded = performance.now();
    stage = 'filtering';
    const timeoutMs = deadlineMs - (downloaded - started);
    const result = await engine.run(chain, original, {
      signal: work,
      timeoutMs,
      ...(maxPixels === undefined ? {} : { maxPixels }),
    });
    work.throwIfAborted();
    const filtered = performance.now();
    stage = 'uploading its result';
    onUploading();
    const imageId = await api.uploadFiltered(
      { type: 'filtered', job_id: job.job_id, lease_id: job.lease_id },
      result,
      work,
    );
    const ms = (from: number, to: number): number => Math.round(to - from);
    log.debug(
      {
        download_ms: ms(started, downloaded),
        filter_ms: ms(downloaded, filtered),
        upload_ms: ms(filtered, performance.now()),
        bytes: original.length,
        steps: chain.length,
      },
      'job filtered',
    );
    return { kind: 'done', imageId };
  } catch (error) {
    if (signal.aborted) return { kind: 'dropped', reason: 'cancelled' };
    if (deadline.signal.aborted) {
      const message =
        `job deadline passed: not done ${formatDuration(deadlineMs)} after it started (--job-deadline), ` +
        `while ${stage}; its work was abandoned`;
      return { kind: 'failed', error: message, retryable: true };
    }
    if (error instanceof UndecodableImageError) return { kind: 'failed', error: error.message, retryable: false };
    // a step that cannot apply to this image fails for good; what this engine lacks, another may have
    if (error instanceof ChainError)
      return { kind: 'failed', error: error.message, retryable: error.otherEngineMayRun };
    // 409: the lease moved on; 410: the job was cancelled or its image deleted. Neither is this worker's failure
    if (error instanceof ApiError && (error.status === 409 || error.status === 410))
      return { kind: 'dropped', reason: error.message };
    // 404: the original is gone (workload deleted); 4xx other than that may be a transient auth problem
    const retryable = !(error instanceof ApiError && error.status === 404);
    return { kind: 'failed', error: error instanceof Error ? error.message : String(error), retryable };
  } finally {
    clearTimeout(timer);
  }
}
