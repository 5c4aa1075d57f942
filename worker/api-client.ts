import http from 'node:http';
import {
  storedResultAnswersSchema,
  type FilteredUpload,
  type LeaseRef,
  type StoredResultAnswer,
} from '../common/protocol.js';
import type { FilterResult } from './engines/index.js';
import { StoredReports } from './stored-reports.js';
import { httpCall, type HttpReply, type HttpTimeouts, DEFAULT_HTTP_TIMEOUTS } from './http-call.js';

export { DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts, HttpTimeoutError as ApiTimeoutError } from './http-call.js';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The message of an error answer's JSON body ({error: {message}}), if it has one. */
function messageOf(reply: HttpReply): string | undefined {
  try {
    const parsed = JSON.parse(reply.body.toString('utf8')) as { error?: { message?: string } };
    return parsed.error?.message;
  } catch {
    return undefined; // not JSON: the status text says it
  }
}

function failure(reply: HttpReply, what: string): ApiError {
  return new ApiError(
    `${what}: HTTP ${reply.status} ${messageOf(reply) ?? http.STATUS_CODES[reply.status] ?? ''}`,
    reply.status,
  );
}

/**
 * A stored result's report refused with `status`: 422 says the server found the stored object missing or wrong
 * and failed the attempt itself (StoredResultRefusedError); anything else is its own ApiError.
 */
function reportRefusal(what: string, status: number, message: string | undefined): ApiError {
  const detail = message ?? http.STATUS_CODES[status] ?? '';
  if (status === 422) return new StoredResultRefusedError(`${what} refused: HTTP 422 ${detail}`);
  return new ApiError(`${what} failed: HTTP ${status} ${detail}`, status);
}

/** The worker's side of the REST contract: download an original, upload its filtered image. */
export class ApiClient {
  private readonly base: string;
  /** Stored results reported several a request; absent: one a request (a server that does not take them together). */
  private readonly together: StoredReports | null;

  constructor(
    baseUrl: string,
    private readonly token: () => string,
    private readonly timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS,
    /** The server takes stored results together (`POST /results`): they go several a request (StoredReports). */
    resultsTogether = false,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
    // a report carries several jobs' results: no one job's abort cuts it (its own wait ends at once, StoredReports)
    const unending = new AbortController().signal;
    this.together = resultsTogether ? new StoredReports((results) => this.reportHeld(results, unending)) : null;
  }

  async download(imageId: string, signal: AbortSignal): Promise<Buffer> {
    const what = `download of image ${imageId}`;
    const reply = await httpCall({
      url: new URL(`${this.base}/images/${encodeURIComponent(imageId)}`),
      method: 'GET',
      headers: { authorization: `Bearer ${this.token()}` },
      parts: [],
      signal,
      timeouts: this.timeouts,
      what,
    });
    if (reply.status !== 200) throw failure(reply, `${what} failed`);
    return reply.body;
  }

  async uploadFiltered(upload: FilteredUpload, result: FilterResult, signal: AbortSignal): Promise<string> {
    // the image as the whole body, the fields in the query string: no multipart body for the server to parse
    const query = new URLSearchParams(upload);
    const what = `upload of job ${upload.job_id}`;
    const reply = await httpCall({
      url: new URL(`${this.base}/images?${query.toString()}`),
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.token()}`,
        'content-type': result.mime,
        'content-length': result.data.length,
      },
      parts: [result.data],
      signal,
      timeouts: this.timeouts,
      what,
    });
    if (reply.status !== 201) throw failure(reply, `${what} failed`);
    return imageIdOf(reply, 'upload');
  }

  /**
   * Reports a result the worker already put where its assignment said (`stored=true`, no body): the server
   * checks it there and completes the job. 422: the stored object is missing or wrong, and the server has
   * failed the attempt itself (StoredResultRefusedError).
   */
  reportStored(upload: Omit<FilteredUpload, 'stored' | 'type'>, signal: AbortSignal): Promise<string> {
    const result = { job_id: upload.job_id, lease_id: upload.lease_id };
    return this.together ? this.together.report(result, signal) : this.reportOne(result, signal);
  }

  /** What StoredReports holds, in one request: one result as its own report (the cheaper request), more together. */
  private async reportHeld(results: readonly LeaseRef[], signal: AbortSignal): Promise<Array<string | Error>> {
    if (results.length === 1) return [await this.reportOne(results[0]!, signal)];
    const answers = await this.reportStoredTogether(results, signal);
    return answers.map((answer) => {
      try {
        return storedAnswer(answer);
      } catch (error) {
        return error as Error;
      }
    });
  }

  private async reportOne(result: LeaseRef, signal: AbortSignal): Promise<string> {
    const upload = { type: 'filtered', ...result, stored: 'true' } satisfies FilteredUpload;
    const query = new URLSearchParams(upload);
    const what = `report of the stored result of job ${upload.job_id}`;
    const reply = await httpCall({
      url: new URL(`${this.base}/images?${query.toString()}`),
      method: 'POST',
      headers: { authorization: `Bearer ${this.token()}`, 'content-length': 0 },
      parts: [],
      signal,
      timeouts: this.timeouts,
      what,
    });
    if (reply.status !== 201) throw reportRefusal(what, reply.status, messageOf(reply));
    return imageIdOf(reply, 'report');
  }

  /**
   * Reports several stored results in one request (`POST /results`, to a server whose registration offered it):
   * the answers in the order reported, each as its own report would have been answered.
   */
  private async reportStoredTogether(results: readonly LeaseRef[], signal: AbortSignal): Promise<StoredResultAnswer[]> {
    const body = Buffer.from(JSON.stringify({ results }));
    const what = `report of ${results.length} stored results`;
    const reply = await httpCall({
      url: new URL(`${this.base}/results`),
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.token()}`,
        'content-type': 'application/json',
        'content-length': body.length,
      },
      parts: [body],
      signal,
      timeouts: this.timeouts,
      what,
    });
    if (reply.status !== 200) throw failure(reply, `${what} failed`);
    let answers: StoredResultAnswer[];
    try {
      answers = storedResultAnswersSchema.parse(JSON.parse(reply.body.toString('utf8'))).results;
    } catch {
      throw new ApiError(`${what} answered with a body that is not its answers`, reply.status);
    }
    if (answers.length !== results.length || answers.some((answer, index) => answer.job_id !== results[index]!.job_id))
      throw new ApiError(`${what} answered for other results than were reported`, reply.status);
    return answers;
  }
}

/** A stored result's answer in a report of several, as its own report's answer: the image id, or its error. */
function storedAnswer(answer: StoredResultAnswer): string {
  const what = `report of the stored result of job ${answer.job_id}`;
  if (answer.status === 201 && answer.image_id !== undefined) return answer.image_id;
  throw reportRefusal(what, answer.status, answer.error?.message);
}

/** The server found no stored result, or a wrong one, where the job's target was: it failed the attempt itself. */
export class StoredResultRefusedError extends ApiError {
  constructor(message: string) {
    super(message, 422);
  }
}

function imageIdOf(reply: HttpReply, call: string): string {
  let answer: { image_id?: unknown };
  try {
    answer = JSON.parse(reply.body.toString('utf8')) as { image_id?: unknown };
  } catch {
    throw new ApiError(`${call} answered with a body that is not JSON`, reply.status);
  }
  if (typeof answer.image_id !== 'string') throw new ApiError(`${call} answered without an image_id`, reply.status);
  return answer.image_id;
}
