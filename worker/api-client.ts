import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { FilteredUpload } from '../common/protocol.js';
import { formatDuration } from '../common/units.js';
import type { FilterResult } from './engines/index.js';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

// node:http rather than fetch: fetch's web streams and FormData cost more CPU per image than the
// transfer itself (they showed as the worker's largest cost in profiles)
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/** The time limits of every call to the API. */
export interface HttpTimeouts {
  /** From the call until its connection is up (a new connection only; DNS lookup included). */
  connectMs: number;
  /** The longest the connection may stay silent: no byte sent or received. */
  idleMs: number;
  /** The whole call: connection, request, answer and its body. */
  totalMs: number;
}

/** 10 s to connect, 30 s of silence, 2 min in all: a 50 MB image over 10 Mbit/s takes about 40 s. */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { connectMs: 10_000, idleMs: 30_000, totalMs: 120_000 };

type TimeoutKind = 'connect' | 'idle' | 'total';

const TIMEOUT_TEXT: Record<TimeoutKind, string> = {
  connect: 'connect timeout: no connection within',
  idle: 'idle timeout: nothing sent or received for',
  total: 'total timeout: not finished within',
};

/** A call that ran out of time: the API is slow, unreachable or stuck. Worth another attempt. */
export class ApiTimeoutError extends Error {
  override name = 'ApiTimeoutError';
  constructor(
    readonly kind: TimeoutKind,
    ms: number,
    what: string,
  ) {
    super(`${what} failed: ${TIMEOUT_TEXT[kind]} ${formatDuration(ms)}`);
  }
}

interface Reply {
  status: number;
  body: Buffer;
}

interface Call {
  url: URL;
  method: string;
  headers: Record<string, string | number>;
  parts: Buffer[];
  signal: AbortSignal;
  timeouts: HttpTimeouts;
  /** What the call is for, for its errors: "download of image <id>". */
  what: string;
}

/** The whole body, in one buffer sized by Content-Length when the server sends it. */
function readBody(response: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(response.headers['content-length']);
    const chunks: Buffer[] = [];
    let length = 0;
    const body = Number.isSafeInteger(declared) && declared >= 0 ? Buffer.allocUnsafe(declared) : null;
    response.on('data', (chunk: Buffer) => {
      if (body && length + chunk.length <= body.length) chunk.copy(body, length);
      else chunks.push(chunk);
      length += chunk.length;
    });
    response.on('error', reject);
    response.on('end', () => {
      if (body && length === body.length) resolve(body);
      else if (body) reject(new Error(`the body was ${length} bytes, not the ${body.length} announced`));
      else resolve(Buffer.concat(chunks, length));
    });
  });
}

/**
 * One call, within its connect, idle and total timeouts. A timeout settles the call itself and destroys
 * the request (and its socket), whatever stage it was at: an answer that never comes, or a body that stops
 * halfway, cannot hold the job.
 */
function send(call: Call, retried = false): Promise<Reply> {
  const { url, method, headers, parts, signal, timeouts } = call;
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const settle = (outcome: Reply | Promise<Reply> | Error): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const request = transport.request(
      url,
      { method, headers, signal, agent: agents[url.protocol === 'https:' ? 'https:' : 'http:'] },
      (response) => {
        readBody(response).then(
          (body) => settle({ status: response.statusCode ?? 0, body }),
          (error: Error) => settle(error),
        );
      },
    );
    const timeOut = (kind: TimeoutKind, ms: number): void => {
      if (settled) return;
      const error = new ApiTimeoutError(kind, ms, call.what);
      settle(error);
      request.destroy(error);
    };
    timers.push(setTimeout(() => timeOut('total', timeouts.totalMs), timeouts.totalMs));
    request.setTimeout(timeouts.idleMs, () => timeOut('idle', timeouts.idleMs));
    request.on('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive connection: already up
      const timer = setTimeout(() => timeOut('connect', timeouts.connectMs), timeouts.connectMs);
      timers.push(timer);
      socket.once('connect', () => clearTimeout(timer));
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      // a kept-alive connection the server closed just as we reused it: nothing reached the server
      if (request.reusedSocket && error.code === 'ECONNRESET' && !retried) return settle(send(call, true));
      settle(error);
    });
    for (const part of parts) request.write(part);
    request.end();
  });
}

function failure(reply: Reply, what: string): ApiError {
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
    const reply = await send({
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
    const reply = await send({
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
    let answer: { image_id?: unknown };
    try {
      answer = JSON.parse(reply.body.toString('utf8')) as { image_id?: unknown };
    } catch {
      throw new ApiError('upload answered with a body that is not JSON', reply.status);
    }
    if (typeof answer.image_id !== 'string') throw new ApiError('upload answered without an image_id', reply.status);
    return answer.image_id;
  }
}
