import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import { createApp } from './app.js';
import { imageRoutes } from './routes/images.js';
import { closeAppParts, createAppParts } from './parts.js';
import { DEFAULT_HTTP_TIMEOUTS, type ApiConfig } from './config.js';
import { LogThrottle } from '../common/log-throttle.js';
import { answerJson } from './errors.js';

export interface ApiServer {
  readonly port: number;
  close(graceMs?: number): Promise<void>;
}

const CLOSE_GRACE_MS = 10_000;

/** What node's HTTP parser reports before express sees a request, as JSON like every other error. */
function clientErrorResponse(code: string | undefined): { status: number; message: string } {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: 'the request took too long to arrive' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: 'the request line or headers are too large' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, message: 'the chunk extensions are too large' };
    default:
      return { status: 400, message: 'malformed HTTP request' };
  }
}

function rawJsonResponse(status: number, message: string): string {
  const body = JSON.stringify({ error: { code: status, message } });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

/** The response node's parser is writing on this socket, if any (then only closing is left). */
function responseStarted(socket: Duplex): boolean {
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  return current?.headersSent === true;
}

/** The HTTP listener of the API's port: one server whose requests go to whichever handler serves now. */
export interface HttpListener {
  readonly port: number;
  /**
   * Every request from now on goes to `handler` (connections already open included); null answers 503 while
   * nothing serves (a server switching between forwarding to the leader and leading).
   */
  serve(handler: RequestListener | null): void;
  /** Stops accepting connections, lets requests in flight finish for up to graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Opens the API's port (config.host, config.port) with its timeouts and its answers to malformed requests. */
export async function openListener(config: ApiConfig, log: Logger): Promise<HttpListener> {
  const headersTimeout = config.headersTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs;
  const requestTimeout = config.requestTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs;
  const keepAliveTimeout = config.keepAliveTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.keepAliveTimeoutMs;
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    throw new Error('the headers timeout must not be longer than the request timeout');
  const shortest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
  let current: RequestListener | null = null;
  let closing = false;
  const server: Server = createServer(
    {
      headersTimeout,
      requestTimeout,
      // how often node looks for requests over those timeouts (its default, 30 s, would let a slow client
      // hold a connection for the timeout plus up to 30 s)
      connectionsCheckingInterval: Math.max(50, Math.min(5_000, Math.floor(shortest / 4))),
    },
    (req, res) => {
      // once closing, every answer ends its connection: a client that keeps sending on a kept-alive
      // connection would otherwise hold the close open until its keep-alive timeout
      if (closing) res.setHeader('Connection', 'close');
      if (current) {
        current(req, res);
        return;
      }
      res.setHeader('Retry-After', '1');
      answerJson(res, 503, {
        error: { code: 503, message: 'this server is changing between leading and forwarding: try again shortly' },
      });
    },
  );
  server.keepAliveTimeout = keepAliveTimeout;

  const clientErrors = new LogThrottle();
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') {
      if (clientErrors.next()) {
        log.warn({ code: error.code, count: clientErrors.count }, 'refused a malformed or slow HTTP request');
      }
    }
    if (socket.writable && !responseStarted(socket)) {
      const { status, message } = clientErrorResponse(error.code);
      socket.write(rawJsonResponse(status, message));
    }
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    serve(handler) {
      current = handler;
    },
    close: (graceMs = CLOSE_GRACE_MS) =>
      new Promise<void>((resolve) => {
        closing = true;
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        // connections whose request was in flight at the close go idle later: close them as they do
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearTimeout(cut);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/**
 * Starts the API on `listener` (a listener of its own when none is given, closed with it). On a given listener
 * the API's close only ends its event streams and stops serving: the listener's owner serves the next handler.
 */
export async function startApi(
  controller: Controller,
  config: ApiConfig,
  log: Logger,
  listener?: HttpListener,
): Promise<ApiServer> {
  const http = listener ?? (await openListener(config, log));
  const parts = createAppParts(controller, config, log);
  const app = createApp(controller, config, log, parts);
  const images = imageRoutes(controller, config, parts.http, log);
  http.serve((req, res) => {
    if (!images(req, res)) app(req, res);
  });
  log.info({ port: http.port }, 'api listening');
  return {
    port: http.port,
    async close(graceMs = CLOSE_GRACE_MS) {
      // event streams never finish by themselves: they end now, so only real requests get the grace
      closeAppParts(parts);
      if (listener) listener.serve(null);
      else await http.close(graceMs);
    },
  };
}
