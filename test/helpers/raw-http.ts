import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: { error?: { code: number; message: string } } & Record<string, unknown>;
}

export interface Call {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One HTTP request with the path and headers exactly as given (no normalisation, no defaults). */
export function call(port: number, { method = 'GET', path: target, headers = {}, body }: Call): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const allHeaders = body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers };
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path: target, headers: allHeaders, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Reply['json'] = {};
          try {
            json = JSON.parse(text) as Reply['json'];
          } catch {
            // not JSON: the assertions say so
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
