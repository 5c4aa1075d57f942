import { isFilterName } from '../common/filters/index.js';
import type { Logger } from '../common/log.js';
import { canRun, chainOfFilter, type Operation } from '../common/operations/index.js';
import type { Assignment } from '../common/protocol.js';
import { formatDuration } from '../common/units.js';
import { ApiError, StoredResultRefusedError, type ApiClient } from './api-client.js';
import { ChainError, UndecodableImageError, type FilterEngine } from './engines/index.js';
import {
  API_ONLY_TRANSFERS,
  readOriginal,
  StoreTransferError,
  storeResult,
  targetMismatch,
  type TransferOptions,
} from './transfers.js';

export type JobOutcome =
  | { kind: 'done'; imageId: string }
  /**
   * `storeUnavailable`: the image store (or the API in front of it, with a 503) failed, not the job: the
   * controller gives the attempt back and holds jobs until the store answers. Present only when true.
   */
  | { kind: 'failed'; error: string; retryable: boolean; storeUnavailable?: boolean }
  // cancelled, the lease moved on, or the server refused the stored result and failed the attempt itself:
  // nothing to report
  | { kind: 'dropped'; reason: string };

/** How long a worker works on one job before it gives up on it (--job-deadline); under the server's --job-timeout. */
export const DEFAULT_JOB_DEADLINE_MS = 5 * 60_000;

/** How long a result waits for the API of a new registration when the API it was going to did not answer. */
export const FOLLOW_LEADER_MS = 30_000;
const FOLLOW_POLL_MS = 100;

export interface RunOptions {
  /**
   * Settles when the job may start (a slot is free; it rejects with the signal's reason on abort). The job
   * deadline runs from the assignment, waiting included. Absent: at once.
   */
  admitted?: (signal: AbortSignal) => Promise<void>;
  /**
   * The API of this worker's registration now (null while unregistered). When the API a result goes to does not
   * answer (its server died or lost the lead), the result goes to the API of the next registration instead: the
   * new leader honours the lease this worker still holds.
   */
  currentApi?: () => ApiClient | null;
  /** The job is given up this long after it started (--job-deadline). */
  deadlineMs?: number;
  /** The largest image the engine decodes (the API's --max-pixels); absent: no limit of the engine's own. */
  maxPixels?: number;
  /** Where this worker can move bytes itself: its images folder, and the time limits of presigned transfers. */
  transfers?: TransferOptions;
}

/** What the job runs: its chain of operations, or its course filter's one-step chain; null for an unknown filter. */
export function chainOf(job: Assignment): Operation[] | null {
  if (job.operations) return job.operations;
  return job.filter !== undefined && isFilterName(job.filter) ? chainOfFilter(job.filter) : null;
}

/**
 * Download, run the chain, upload: one job from start to end. Never throws; the outcome says what happened.
 * The bytes go the ways the assignment says (`source`, `target`): through the API by default, or directly,
 * by path or presigned URL, the stored result then reported to the API (`stored=true`).
 * `onUploading` is told when the result is on its way: the answered upload (or report) completes the job.
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
  {
    admitted,
    deadlineMs = DEFAULT_JOB_DEADLINE_MS,
    maxPixels,
    transfers = API_ONLY_TRANSFERS,
    currentApi,
  }: RunOptions = {},
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
  const target = job.target ?? { via: 'api' };
  const via = `${job.source?.via ?? 'api'}->${target.via}`;
  let stage = 'waiting for a free slot';
  try {
    if (admitted) await admitted(work);
    work.throwIfAborted();
    const running = performance.now();
    stage = 'downloading its original';
    const original = await readOriginal(job, api, transfers, work);
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
    const mismatch = target.via === 'api' ? null : targetMismatch(target, result);
    if (mismatch) return { kind: 'failed', error: mismatch, retryable: false };
    stage = 'uploading its result';
    onUploading();
    const upload = { type: 'filtered', job_id: job.job_id, lease_id: job.lease_id } as const;
    let imageId: string;
    let stored: number | null = null;
    const follow = currentApi ?? (() => api);
    if (target.via === 'api')
      imageId = await deliver((client) => client.uploadFiltered(upload, result, work), api, follow, work, log);
    else {
      await storeResult(job, target, result, transfers, work);
      stored = performance.now();
      stage = 'reporting its stored result';
      imageId = await deliver((client) => client.reportStored(upload, work), api, follow, work, log);
    }
    const ms = (from: number, to: number): number => Math.round(to - from);
    const finished = performance.now();
    log.debug(
      {
        via,
        ...(admitted ? { wait_ms: ms(started, running) } : {}),
        download_ms: ms(running, downloaded),
        filter_ms: ms(downloaded, filtered),
        upload_ms: ms(filtered, stored ?? finished),
        ...(stored === null ? {} : { report_ms: ms(stored, finished) }),
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
    // the server found the stored result missing or wrong and has failed the attempt itself: not again
    if (error instanceof StoredResultRefusedError)
      return { kind: 'dropped', reason: `${error.message} (the server failed the attempt)` };
    // 409: the lease moved on; 410: the job was cancelled or its image deleted. Neither is this worker's failure
    if (error instanceof ApiError && (error.status === 409 || error.status === 410))
      return { kind: 'dropped', reason: error.message };
    // the store behind the API, or the object store itself, is down: not the job's fault
    if (
      (error instanceof ApiError && error.status === 503) ||
      (error instanceof StoreTransferError && error.storeUnavailable)
    )
      return { kind: 'failed', error: error.message, retryable: true, storeUnavailable: true };
    // 404: the original is gone (workload deleted); 4xx other than that may be a transient auth problem
    const retryable = !(error instanceof ApiError && error.status === 404);
    return { kind: 'failed', error: error instanceof Error ? error.message : String(error), retryable };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The API did not answer at all (no connection, cut, timed out). Not a 503: that says the image store behind the
 * API is down, which gives the job back at no cost at once (and a server that stepped down forwards to the leader).
 */
function unanswered(error: unknown): boolean {
  return error instanceof Error && !(error instanceof ApiError) && !(error instanceof StoreTransferError);
}

/**
 * Sends a result to `api`; if that API does not answer, to the API of this worker's next registration (its server
 * died or lost the lead, and the worker has registered with the new leader), for up to FOLLOW_LEADER_MS.
 */
async function deliver<T>(
  send: (client: ApiClient) => Promise<T>,
  api: ApiClient,
  currentApi: () => ApiClient | null,
  signal: AbortSignal,
  log: Logger,
): Promise<T> {
  let client = api;
  for (;;) {
    try {
      return await send(client);
    } catch (error) {
      if (signal.aborted || !unanswered(error)) throw error;
      const deadline = Date.now() + FOLLOW_LEADER_MS;
      let next = currentApi();
      while ((next === null || next === client) && Date.now() < deadline && !signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
        next = currentApi();
      }
      if (next === null || next === client) throw error;
      log.info({ error: error instanceof Error ? error.message : String(error) }, 'result sent to the new leader');
      client = next;
    }
  }
}
