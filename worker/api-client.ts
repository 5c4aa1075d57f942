import http from 'node:http';
import type { FilteredUpload } from '../common/protocol.js';
import type { FilterResult } from './engines/index.js';
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

function failure(reply: HttpReply, what: string): ApiError {
  let detail = http.STATUS_CODES[reply.status] ?? '';
  try {
    const parsed = JSON.parse(reply.body.toString('utf8')) as { error?: { message?: string } };
    detail = parsed.error?.message ?? detail;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(`${what}: HTTP ${reply.status} ${detail}`, reply.status);
}

/** The worker's side of the REST contract: download an original, upload its filtered image. */
export class ApiClient {
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly token: () => string,
    private readonly timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
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
  async reportStored(upload: Omit<FilteredUpload, 'stored'>, signal: AbortSignal): Promise<string> {
    const query = new URLSearchParams({ ...upload, stored: 'true' });
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
    if (reply.status === 422) {
      const error = failure(reply, `${what} refused`);
      throw new StoredResultRefusedError(error.message);
    }
    if (reply.status !== 201) throw failure(reply, `${what} failed`);
    return imageIdOf(reply, 'report');
  }
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
