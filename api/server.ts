import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import { createApp } from './app.js';
import { imageRoutes } from './routes/images.js';
import { closeAppParts, createAppParts } from './parts.js';
import { DEFAULT_HTTP_TIMEOUTS, type ApiConfig } from './config.js';
import { LogThrottle } from '../common/log-throttle.js';

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

export async function startApi(controller: Controller, config: ApiConfig, log: Logger): Promise<ApiServer> {
  const headersTimeout = config.headersTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs;
  const requestTimeout = config.requestTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs;
  const keepAliveTimeout = config.keepAliveTimeoutMs ?? DEFAULT_HTTP_TIMEOUTS.keepAliveTimeoutMs;
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    throw new Error('the headers timeout must not be longer than the request timeout');
  const shortest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
  const parts = createAppParts(controller, config, log);
  const app = createApp(controller, config, log, parts);
  const images = imageRoutes(controller, config, parts.http, log);
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
      if (!images(req, res)) app(req, res);
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
  log.info({ port }, 'api listening');
  return {
    port,
    /** Stops accepting connections, lets requests in flight finish for up to graceMs, then cuts the rest. */
    close: (graceMs = CLOSE_GRACE_MS) =>
      new Promise<void>((resolve) => {
        // event streams never finish by themselves: they end now, so only real requests get the grace
        closeAppParts(parts);
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
