// The API of a server that does not lead (several servers sharing one PostgreSQL database): every request is
// forwarded, as it came, to the leader's API, and its answer (event streams and downloads included) streamed
// back. A user may so use any server; the one that leads does the work.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../common/log.js';
import { answerJson } from './errors.js';
import type { ApiServer, HttpListener } from './server.js';

/** The leader's API is looked up again after this long, or at once when it did not answer. */
const LEADER_CACHE_MS = 1000;
/** Headers that belong to one connection, not to the request (RFC 9110, 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

function unavailable(res: ServerResponse, message: string): void {
  res.setHeader('Retry-After', '1');
  answerJson(res, 503, { error: { code: 503, message } });
}

/** The request's headers for the leader: hop-by-hop ones dropped, the client's address added to X-Forwarded-For. */
function forwardedHeaders(req: IncomingMessage, target: URL): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  const client = req.socket.remoteAddress ?? 'unknown';
  const earlier = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = earlier ? `${String(earlier)}, ${client}` : client;
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  headers.host = target.host;
  return headers;
}

/**
 * Serves `listener` (the API's port) by forwarding everything to the API `leaderApiUrl` names. No leader known,
 * or one that does not answer: 503 with Retry-After, as JSON like every error. Its close stops serving (the
 * listener's owner serves the next handler, or closes it).
 */
export function startStandbyApi(
  listener: HttpListener,
  leaderApiUrl: () => Promise<string | null>,
  log: Logger,
): ApiServer {
  let cached: { url: string | null; at: number } | null = null;
  async function leader(): Promise<string | null> {
    if (cached && Date.now() - cached.at < LEADER_CACHE_MS) return cached.url;
    const url = await leaderApiUrl().catch(() => null);
    cached = { url, at: Date.now() };
    return url;
  }

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const base = await leader();
    if (!base) {
      unavailable(
        res,
        'no server leads now (the datastore may be unreachable, or one is taking over): try again shortly',
      );
      return;
    }
    const target = new URL(req.url ?? '/', base);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = send(target, { method: req.method, headers: forwardedHeaders(req, target) }, (answer) => {
      const headers = { ...answer.headers };
      for (const name of HOP_BY_HOP) delete headers[name];
      res.writeHead(answer.statusCode ?? 502, { ...headers, 'x-dpip-forwarded-to-leader': '1' });
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      cached = null;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      log.warn({ leader: base, error: error.message }, 'the leading server did not answer a forwarded request');
      unavailable(res, 'the leading server did not answer (it may be changing): try again shortly');
    });
    // a client that goes away (an event stream closed) ends the forwarded request too
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  listener.serve((req, res) => {
    forward(req, res).catch((error: unknown) => {
      log.error({ error: error instanceof Error ? error.message : String(error) }, 'forwarding failed');
      if (!res.headersSent) unavailable(res, 'the request could not be forwarded to the leading server');
    });
  });
  log.info({ port: listener.port }, 'api listening: forwarding to the leading server');
  return {
    port: listener.port,
    async close() {
      listener.serve(null);
    },
  };
}
