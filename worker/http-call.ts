// One HTTP call of the worker, to the API or to the object store (a presigned URL), within time limits.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { droppedKeptConnection } from '../common/kept-connection.js';
import { formatDuration } from '../common/units.js';

// node:http rather than fetch: fetch's web streams and FormData cost more CPU per image than the
// transfer itself (they showed as the worker's largest cost in profiles)
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/** The time limits of every call to the API, and of every transfer to or from the object store. */
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

export type TimeoutKind = 'connect' | 'idle' | 'total';

const TIMEOUT_TEXT: Record<TimeoutKind, string> = {
  connect: 'connect timeout: no connection within',
  idle: 'idle timeout: nothing sent or received for',
  total: 'total timeout: not finished within',
};

/** A call that ran out of time: its server is slow, unreachable or stuck. Worth another attempt. */
export class HttpTimeoutError extends Error {
  override name = 'HttpTimeoutError';
  constructor(
    readonly kind: TimeoutKind,
    ms: number,
    what: string,
  ) {
    super(`${what} failed: ${TIMEOUT_TEXT[kind]} ${formatDuration(ms)}`);
  }
}

export interface HttpReply {
  status: number;
  body: Buffer;
}

export interface HttpCall {
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
export function httpCall(call: HttpCall, retried = false): Promise<HttpReply> {
  const { url, method, headers, parts, signal, timeouts } = call;
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const settle = (outcome: HttpReply | Promise<HttpReply> | Error): void => {
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
      const error = new HttpTimeoutError(kind, ms, call.what);
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
      if (droppedKeptConnection(request, error) && !retried) return settle(httpCall(call, true));
      settle(error);
    });
    for (const part of parts) request.write(part);
    request.end();
  });
}
