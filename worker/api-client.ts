import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { FilteredUpload } from '../common/protocol.js';
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

interface Reply {
  status: number;
  body: Buffer;
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

function send(
  url: URL,
  method: string,
  headers: Record<string, string | number>,
  parts: Buffer[],
  signal: AbortSignal,
  retried = false,
): Promise<Reply> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      { method, headers, signal, agent: agents[url.protocol === 'https:' ? 'https:' : 'http:'] },
      (response) => {
        readBody(response).then((body) => resolve({ status: response.statusCode ?? 0, body }), reject);
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      // a kept-alive connection the server closed just as we reused it: nothing reached the server
      if (request.reusedSocket && error.code === 'ECONNRESET' && !retried)
        return resolve(send(url, method, headers, parts, signal, true));
      reject(error);
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
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async download(imageId: string, signal: AbortSignal): Promise<Buffer> {
    const reply = await send(
      new URL(`${this.base}/images/${encodeURIComponent(imageId)}`),
      'GET',
      { authorization: `Bearer ${this.token()}` },
      [],
      signal,
    );
    if (reply.status !== 200) throw failure(reply, `download of image ${imageId} failed`);
    return reply.body;
  }

  async uploadFiltered(upload: FilteredUpload, result: FilterResult, signal: AbortSignal): Promise<string> {
    // the image as the whole body, the fields in the query string: no multipart body for the server to parse
    const query = new URLSearchParams(upload);
    const headers = {
      authorization: `Bearer ${this.token()}`,
      'content-type': result.mime,
      'content-length': result.data.length,
    };
    const reply = await send(
      new URL(`${this.base}/images?${query.toString()}`),
      'POST',
      headers,
      [result.data],
      signal,
    );
    if (reply.status !== 201) throw failure(reply, `upload of job ${upload.job_id} failed`);
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
