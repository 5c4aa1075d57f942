import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { droppedKeptConnection } from '../../common/kept-connection.js';
import { ImageStoreUnavailable } from './errors.js';
import type { StoredObject } from './types.js';

/** Kept connections a GET may find dropped before it is the store's failure (each one dropped is gone). */
const MAX_KEPT_CONNECTION_DROPS = 4;

/** A request that failed on a kept-alive connection the store had closed: it may go again. */
class DroppedKeptConnection extends ImageStoreUnavailable {}

/**
 * The first bytes of an object and its size, by a ranged GET of a presigned URL on a kept-alive
 * connection. The SDK's GetObject costs about 1.9 ms of CPU a call (its middleware, the signing of
 * every header, its stream wrappers); this costs about 0.5 ms, and the store checks two objects per
 * image (an upload confirmed, a result reported).
 */
export class RangedGet {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
  };

  constructor(
    private readonly connectMs: number,
    private readonly totalMs: number,
  ) {}

  /**
   * null: no object at the URL's key. `what` names the work for errors (never the URL: it is a credential).
   * A GET that failed on a kept-alive connection as it went out (the store closed it meanwhile, idle: any store
   * does, at a time of its own) goes again, on the next kept connection or a new one; one that fails on a new
   * connection is the store's failure.
   */
  async head(url: string, bytes: number, what: string): Promise<StoredObject | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.headOnce(url, bytes, what);
      } catch (error) {
        if (!(error instanceof DroppedKeptConnection) || attempt >= MAX_KEPT_CONNECTION_DROPS) throw error;
      }
    }
  }

  private headOnce(url: string, bytes: number, what: string): Promise<StoredObject | null> {
    const target = new URL(url);
    const transport = target.protocol === 'https:' ? https : http;
    const agent = target.protocol === 'https:' ? this.agents['https:'] : this.agents['http:'];
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (outcome: StoredObject | null | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const request = transport.get(target, { agent, headers: { range: `bytes=0-${bytes - 1}` } }, (response) =>
        this.answer(response, bytes, what).then(settle, settle),
      );
      const timer = setTimeout(() => {
        settle(new ImageStoreUnavailable(`${what}: no answer within ${this.totalMs} ms`));
        request.destroy();
      }, this.totalMs);
      request.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(() => {
          settle(new ImageStoreUnavailable(`${what}: no connection within ${this.connectMs} ms`));
          request.destroy();
        }, this.connectMs);
        socket.once('connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        const detail = `${what}: ${error.code ?? error.message}`;
        const dropped = droppedKeptConnection(request, error);
        settle(dropped ? new DroppedKeptConnection(detail, error) : new ImageStoreUnavailable(detail, error));
      });
    });
  }

  destroy(): void {
    for (const agent of Object.values(this.agents)) agent.destroy();
  }

  private async answer(response: IncomingMessage, bytes: number, what: string): Promise<StoredObject | null> {
    const status = response.statusCode ?? 0;
    if (status === 404) {
      response.resume();
      return null;
    }
    // the range of an empty object (S3 answers 416; s3rver a 206 of "bytes 0-0/0" whose body never comes)
    const total = totalOf(response.headers['content-range']);
    if (status === 416 || total === 0) {
      response.destroy();
      return { size: 0, head: Buffer.alloc(0) };
    }
    if (status !== 200 && status !== 206) {
      response.resume();
      throw new ImageStoreUnavailable(`${what}: the store answered HTTP ${status}`);
    }
    // a store that ignores the range answers 200 with the whole object: its length is the size
    const size = total ?? Number(response.headers['content-length']);
    if (!Number.isSafeInteger(size)) throw new ImageStoreUnavailable(`${what}: the store's answer has no length`);
    const chunks: Buffer[] = [];
    let length = 0;
    try {
      for await (const chunk of response) {
        chunks.push(chunk as Buffer);
        length += (chunk as Buffer).length;
        // read to its end, so that the connection is kept; only a store that ignored the range is cut
        if (length > bytes) break;
      }
    } catch (error) {
      throw new ImageStoreUnavailable(`${what}: the answer broke off`, error);
    } finally {
      if (!response.complete) response.destroy();
    }
    return { size, head: Buffer.concat(chunks, length).subarray(0, Math.min(bytes, size)) };
  }
}

/** The whole object's length from `Content-Range: bytes 0-99/1234`. */
function totalOf(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)\s*$/.exec(contentRange);
  return match ? Number(match[1]) : undefined;
}
