// The worker moves a job's bytes the ways its assignment says: through the API (the default), by path in
// the images folder, or with presigned URLs straight to an object store, and then reports the stored result.
// Real parts: a real engine, temporary images folders, an HTTP server on loopback in the object store's
// place (it answers presigned GET and PUT as S3 does, and checks their signature), and one in the API's
// place that records the exact requests the worker makes.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { bindPublisher, connectRpc, method, serveRpc } from '../../common/bus/index.js';
import {
  ANNOUNCE,
  assignParamsSchema,
  CONTROLLER_METHODS,
  failParamsSchema,
  goodbyeParamsSchema,
  heartbeatParamsSchema,
  registerParamsSchema,
  STORE_ID_FILE,
  type AssignParams,
  type Assignment,
  type FailParams,
  type RegisterParams,
} from '../../common/protocol.js';
import { ApiClient } from '../../worker/api-client.js';
import type { ControllerSession } from '../../worker/controller-session.js';
import { readImagesDirId } from '../../worker/controller-session.js';
import { createEngine, type FilterEngine, type FilterResult } from '../../worker/engines/index.js';
import { reportFailure } from '../../worker/failure-report.js';
import type { HttpTimeouts } from '../../worker/http-call.js';
import { runJob, type JobOutcome } from '../../worker/job-runner.js';
import { keyPath, type TransferOptions } from '../../worker/transfers.js';
import { makeTestImage } from '../helpers/images.js';
import { freePorts } from '../helpers/ports.js';
import { DIST_BIN, spawnNode, waitFor, type Spawned } from '../helpers/processes.js';
import { TEST_SECRET } from '../helpers/system.js';

const TIMEOUTS: HttpTimeouts = { connectMs: 1000, idleMs: 600, totalMs: 3000 };
const WORKER_TOKEN = 'worker-token-1';

interface Recorded {
  method: string;
  path: string;
  query: [string, string][];
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function readAll(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** What the test must close at its end, whatever happened: servers, folders, processes, engines. */
const cleanups: (() => Promise<unknown> | undefined)[] = [];

/** An HTTP server on loopback that records each request with its body, closed (its connections cut) after the test. */
async function recordingServer(
  answer: (request: Recorded, response: ServerResponse, raw: IncomingMessage) => void,
): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((raw, response) => {
    void readAll(raw).then((body) => {
      const url = new URL(raw.url ?? '/', 'http://stand-in');
      const recorded = {
        method: raw.method ?? '',
        path: url.pathname,
        query: [...url.searchParams],
        headers: raw.headers,
        body,
      };
      requests.push(recorded);
      answer(recorded, response, raw);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

type StoreMode = 'normal' | 'drop' | 'silent' | 403 | 429 | 503;

/**
 * An object store as a presigned client sees S3: GET answers 200 with the object, PUT stores the body and
 * answers 200; a request whose signature (or signed Content-Type) is not the one given out answers 403, with
 * an S3 error body that quotes the signed request, as S3's SignatureDoesNotMatch does.
 */
async function objectStore() {
  const objects = new Map<string, Buffer>();
  const signed = new Map<string, { signature: string; contentType?: string }>();
  /** How it answers the requests of `only` (all when absent). */
  const state: { mode: StoreMode; only?: 'GET' | 'PUT' } = { mode: 'normal' };
  const { url, requests } = await recordingServer((request, response, raw) => {
    const s3Error = (status: number, code: string): void => {
      const query = request.query.map(([name, value]) => `${name}=${value}`).join('&');
      const body = `<Error><Code>${code}</Code><CanonicalRequest>${request.method} ${request.path} ${query}`;
      response.writeHead(status, { 'content-type': 'application/xml' }).end(`${body}</CanonicalRequest></Error>`);
    };
    const mode = state.only === undefined || state.only === request.method ? state.mode : 'normal';
    if (mode === 'drop') return raw.socket.destroy();
    if (mode === 'silent') return;
    if (mode !== 'normal') return s3Error(mode, mode === 403 ? 'AccessDenied' : 'SlowDown');
    const expected = signed.get(`${request.method} ${request.path}`);
    const signature = new URLSearchParams(request.query).get('X-Amz-Signature');
    if (!expected || signature !== expected.signature || request.headers['content-type'] !== expected.contentType)
      return s3Error(403, 'SignatureDoesNotMatch');
    if (request.method === 'PUT') {
      objects.set(request.path, request.body);
      return response.writeHead(200, { etag: '"1"' }).end();
    }
    const object = objects.get(request.path);
    if (!object) return s3Error(404, 'NoSuchKey');
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': object.length });
    response.end(object);
  });
  return {
    url,
    requests,
    objects,
    state,
    /** A presigned URL for one method on one key (a PUT's Content-Type signed with it), as the server gives out. */
    presign(verb: 'GET' | 'PUT', key: string, mime?: string): { url: string; headers?: Record<string, string> } {
      const signature = randomBytes(32).toString('hex');
      signed.set(`${verb} /bucket/${key}`, { signature, ...(mime ? { contentType: mime } : {}) });
      const query = new URLSearchParams({
        'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
        'X-Amz-Credential': 'AKIAEXAMPLE/20250101/us-east-1/s3/aws4_request',
        'X-Amz-Date': '20250101T000000Z',
        'X-Amz-Expires': '300',
        'X-Amz-SignedHeaders': mime ? 'content-type;host' : 'host',
        'X-Amz-Signature': signature,
      });
      return {
        url: `${url}/bucket/${key}?${query.toString()}`,
        ...(mime ? { headers: { 'content-type': mime } } : {}),
      };
    },
  };
}

/**
 * The API as the worker meets it: GET /images/{id} serves an original, POST /images takes an upload or the
 * report of a stored result; `answers` says how it answers instead (by route), as a real API would fail.
 */
async function apiStandIn(originals: Record<string, Buffer> = {}) {
  const answers: { download?: number; upload?: number; report?: number } = {};
  const stand = await recordingServer((request, response) => {
    const json = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const fail = (status: number): void => json(status, { error: { message: `stand-in answer ${status}` } });
    const image = /^\/images\/([^/]+)$/.exec(request.path);
    if (request.method === 'GET' && image) {
      if (answers.download) return fail(answers.download);
      const original = originals[decodeURIComponent(image[1]!)];
      if (!original) return fail(404);
      return void response.writeHead(200, { 'content-type': 'image/png' }).end(original);
    }
    if (request.method === 'POST' && request.path === '/images') {
      const status = new URLSearchParams(request.query).get('stored') === 'true' ? answers.report : answers.upload;
      if (status) return fail(status);
      return json(201, { image_id: 'result-1', type: 'filtered' });
    }
    fail(404);
  });
  return { ...stand, answers, client: new ApiClient(stand.url, () => WORKER_TOKEN, TIMEOUTS) };
}

/** A logger at debug level whose lines the test reads. */
function debugLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'debug', base: undefined }, sink);
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function assignment(fields: Partial<AssignParams> = {}): Assignment {
  return assignParamsSchema.parse({
    token: 'scheduler-token',
    job_id: 'job-1',
    lease_id: 'lease-1',
    image_id: 'image-1',
    workload_id: 'workload-1',
    operations: [{ op: 'grayscale' }],
    ...fields,
  });
}

describe('worker transfers: bytes by path, by presigned URL, or through the API', function () {
  this.timeout(60_000);
  let engine: FilterEngine;
  let original: Buffer;
  /** Every outcome and log line of the test: none may show a presigned URL. */
  let shown: string[];
  let presignedSecrets: string[];

  before(async () => {
    engine = await createEngine('auto', 2);
    original = await makeTestImage(96, 64, 'image/png', 7);
  });
  after(async () => {
    await engine?.close();
  });
  beforeEach(() => {
    shown = [];
    presignedSecrets = [];
  });
  afterEach(async () => {
    // closed in the reverse order, each whatever the others do
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });

  /** Runs the job with the worker's own code, as its slot would: the outcome, and its log lines. */
  async function run(
    job: Assignment,
    api: ApiClient,
    transfers: TransferOptions,
  ): Promise<{ outcome: JobOutcome; lines: Record<string, unknown>[]; uploading: number }> {
    const lines: Record<string, unknown>[] = [];
    let uploading = 0;
    const outcome = await runJob(
      job,
      api,
      engine,
      new AbortController().signal,
      debugLogger(lines),
      () => uploading++,
      {
        transfers,
      },
    );
    shown.push(JSON.stringify(outcome), ...lines.map((line) => JSON.stringify(line)));
    return { outcome, lines, uploading };
  }

  /** The presigned URLs of the test, and the parts of them that are credentials. */
  function remember(...presigned: { url: string }[]): void {
    for (const { url } of presigned) {
      const parsed = new URL(url);
      presignedSecrets.push(url, parsed.search, parsed.searchParams.get('X-Amz-Signature')!, 'X-Amz-');
    }
  }

  function expectNoPresignedUrlShown(): void {
    for (const text of shown)
      for (const secret of presignedSecrets) expect(text, 'an outcome or log line').to.not.include(secret);
  }

  async function expected(job: Assignment): Promise<FilterResult> {
    return engine.run(job.operations!, original);
  }

  /** The one request the worker makes to report a stored result, exactly. */
  function expectStoredReport(request: Recorded | undefined): void {
    expect(request?.method).to.equal('POST');
    expect(request?.path).to.equal('/images');
    expect(request?.query).to.deep.equal([
      ['type', 'filtered'],
      ['job_id', 'job-1'],
      ['lease_id', 'lease-1'],
      ['stored', 'true'],
    ]);
    expect(request?.headers.authorization).to.equal(`Bearer ${WORKER_TOKEN}`);
    expect(request?.headers['content-length']).to.equal('0');
    expect(request?.headers['content-type']).to.equal(undefined);
    expect(request?.headers['transfer-encoding']).to.equal(undefined);
    expect(request?.body.length).to.equal(0);
  }

  /** An images folder with a workload folder holding the original, as the server keeps them. */
  async function imagesFolder(): Promise<string> {
    const dir = await tempDir('dpip-images-');
    await writeFile(path.join(dir, STORE_ID_FILE), 'store-1\n');
    await mkdir(path.join(dir, 'workload-1'));
    await writeFile(path.join(dir, 'workload-1', 'image-1.png'), original);
    return dir;
  }

  it('path -> path: reads the original in the folder, renames the result to its key, reports it stored', async () => {
    const imagesDir = await imagesFolder();
    const api = await apiStandIn();
    const job = assignment({
      source: { via: 'path', key: 'workload-1/image-1.png' },
      target: { via: 'path', key: 'workload-1/result-1.png', mime: 'image/png' },
    });
    const { outcome, lines, uploading } = await run(job, api.client, { imagesDir, timeouts: TIMEOUTS });
    expect(outcome).to.deep.equal({ kind: 'done', imageId: 'result-1' });
    expect(uploading).to.equal(1);
    const written = await readFile(path.join(imagesDir, 'workload-1', 'result-1.png'));
    expect(written.equals((await expected(job)).data)).to.equal(true);
    // no temporary file left beside it, the original untouched
    expect((await readdir(path.join(imagesDir, 'workload-1'))).sort()).to.deep.equal(['image-1.png', 'result-1.png']);
    expect((await readFile(path.join(imagesDir, 'workload-1', 'image-1.png'))).equals(original)).to.equal(true);
    // the API only heard the report: no download, no upload body
    expect(api.requests).to.have.length(1);
    expectStoredReport(api.requests[0]);
    const filtered = lines.find((line) => line.msg === 'job filtered');
    expect(filtered).to.include({ via: 'path->path' });
    expect(filtered).to.have.keys(
      'level',
      'time',
      'msg',
      'via',
      'download_ms',
      'filter_ms',
      'upload_ms',
      'report_ms',
      'bytes',
      'steps',
    );
  });

  it('url -> url: GETs the original and PUTs the result with the signed Content-Type, then reports it', async () => {
    const store = await objectStore();
    store.objects.set('/bucket/workload-1/image-1.png', original);
    const api = await apiStandIn();
    const source = store.presign('GET', 'workload-1/image-1.png');
    const target = store.presign('PUT', 'workload-1/result-1.jpg', 'image/jpeg');
    remember(source, target);
    const job = assignment({
      operations: [{ op: 'grayscale' }, { op: 'format', type: 'jpeg' }],
      source: { via: 'url', ...source },
      target: { via: 'url', ...target, mime: 'image/jpeg' },
    });
    const { outcome, lines } = await run(job, api.client, { imagesDir: null, timeouts: TIMEOUTS });
    expect(outcome).to.deep.equal({ kind: 'done', imageId: 'result-1' });
    const result = await expected(job);
    expect(result.mime).to.equal('image/jpeg');
    expect(store.requests.map((request) => `${request.method} ${request.path}`)).to.deep.equal([
      'GET /bucket/workload-1/image-1.png',
      'PUT /bucket/workload-1/result-1.jpg',
    ]);
    const [get, put] = store.requests;
    expect(get!.query).to.deep.equal([...new URL(source.url).searchParams]);
    expect(put!.query).to.deep.equal([...new URL(target.url).searchParams]);
    expect(put!.headers['content-type']).to.equal('image/jpeg');
    expect(put!.headers['content-length']).to.equal(String(result.data.length));
    expect(put!.body.equals(result.data)).to.equal(true);
    expect(store.objects.get('/bucket/workload-1/result-1.jpg')!.equals(result.data)).to.equal(true);
    // the worker's token is the API's, never the store's
    for (const request of store.requests) expect(request.headers.authorization).to.equal(undefined);
    expect(api.requests).to.have.length(1);
    expectStoredReport(api.requests[0]);
    expect(lines.find((line) => line.msg === 'job filtered')).to.include({ via: 'url->url' });
    expectNoPresignedUrlShown();
  });

  it('an assignment without source or target still downloads and uploads through the API', async () => {
    const api = await apiStandIn({ 'image-1': original });
    const imagesDir = await imagesFolder();
    const job = assignment();
    const { outcome, lines } = await run(job, api.client, { imagesDir, timeouts: TIMEOUTS });
    expect(outcome).to.deep.equal({ kind: 'done', imageId: 'result-1' });
    const result = await expected(job);
    expect(api.requests.map((request) => `${request.method} ${request.path}`)).to.deep.equal([
      'GET /images/image-1',
      'POST /images',
    ]);
    const [download, upload] = api.requests;
    expect(download!.headers.authorization).to.equal(`Bearer ${WORKER_TOKEN}`);
    expect(upload!.query).to.deep.equal([
      ['type', 'filtered'],
      ['job_id', 'job-1'],
      ['lease_id', 'lease-1'],
    ]);
    expect(upload!.headers.authorization).to.equal(`Bearer ${WORKER_TOKEN}`);
    expect(upload!.headers['content-type']).to.equal('image/png');
    expect(upload!.body.equals(result.data)).to.equal(true);
    // nothing written in the folder, though the worker sees it
    expect(await readdir(path.join(imagesDir, 'workload-1'))).to.deep.equal(['image-1.png']);
    expect(lines.find((line) => line.msg === 'job filtered')).to.include({ via: 'api->api' });
  });

  it('a result of another type than its target fails for good, and nothing is written or reported', async () => {
    const imagesDir = await imagesFolder();
    const store = await objectStore();
    const api = await apiStandIn();
    const source = { via: 'path', key: 'workload-1/image-1.png' } as const;
    const byPath = assignment({ source, target: { via: 'path', key: 'workload-1/result-1.jpg', mime: 'image/jpeg' } });
    const { outcome, uploading } = await run(byPath, api.client, { imagesDir, timeouts: TIMEOUTS });
    expect(outcome).to.deep.equal({
      kind: 'failed',
      error: 'the result is image/png, but its target (by path) is for image/jpeg: nothing was stored',
      retryable: false,
    });
    expect(uploading).to.equal(0);
    expect(await readdir(path.join(imagesDir, 'workload-1'))).to.deep.equal(['image-1.png']);

    const target = store.presign('PUT', 'workload-1/result-1.webp', 'image/webp');
    remember(target);
    const byUrl = assignment({ source, target: { via: 'url', ...target, mime: 'image/webp' } });
    const second = await run(byUrl, api.client, { imagesDir, timeouts: TIMEOUTS });
    expect(second.outcome).to.include({ kind: 'failed', retryable: false });
    expect(store.requests).to.have.length(0);
    expect(api.requests).to.have.length(0);
    expectNoPresignedUrlShown();
  });

  describe('an object store that fails', () => {
    /** A url -> url job against a store that fails requests of one method that way; the original is there. */
    async function againstStore(mode: StoreMode, failing: 'GET' | 'PUT') {
      const store = await objectStore();
      store.objects.set('/bucket/workload-1/image-1.png', original);
      store.state.mode = mode;
      store.state.only = failing;
      const api = await apiStandIn();
      const source = store.presign('GET', 'workload-1/image-1.png');
      const target = store.presign('PUT', 'workload-1/result-1.png', 'image/png');
      remember(source, target);
      const job = assignment({
        source: { via: 'url', ...source },
        target: { via: 'url', ...target, mime: 'image/png' },
      });
      const { outcome } = await run(job, api.client, { imagesDir: null, timeouts: TIMEOUTS });
      // nothing reported to the API: a failed transfer is reported to the controller, by the slot
      expect(api.requests).to.have.length(0);
      return outcome;
    }

    for (const failing of ['GET', 'PUT'] as const) {
      const what =
        failing === 'GET'
          ? 'download of image image-1 from the object store'
          : 'upload of the result of job job-1 to the object store';
      for (const [status, text] of [
        [503, 'Service Unavailable'],
        [429, 'Too Many Requests'],
      ] as const) {
        it(`${failing} answered ${status}: a failure of the store, not of the job`, async () => {
          expect(await againstStore(status, failing)).to.deep.equal({
            kind: 'failed',
            error: `${what} failed: HTTP ${status} ${text}`,
            retryable: true,
            storeUnavailable: true,
          });
          expectNoPresignedUrlShown();
        });
      }

      it(`${failing} answered 403 (an expired or wrong URL): this attempt fails, the store is not down`, async () => {
        expect(await againstStore(403, failing)).to.deep.equal({
          kind: 'failed',
          error: `${what} failed: HTTP 403 Forbidden`,
          retryable: true,
        });
        expectNoPresignedUrlShown();
      });

      it(`${failing}: a connection the store drops is a failure of the store`, async () => {
        const outcome = await againstStore('drop', failing);
        expect(outcome).to.include({ kind: 'failed', retryable: true, storeUnavailable: true });
        expect((outcome as { error: string }).error).to.match(new RegExp(`^${what} failed: `));
        expectNoPresignedUrlShown();
      });

      it(`${failing}: a store that answers nothing fails on the idle timeout, as the store's failure`, async () => {
        expect(await againstStore('silent', failing)).to.deep.equal({
          kind: 'failed',
          error: `${what} failed: idle timeout: nothing sent or received for 600ms`,
          retryable: true,
          storeUnavailable: true,
        });
        expectNoPresignedUrlShown();
      });
    }

    it('a store that refuses connections is a failure of the store, and its URL is not shown', async () => {
      const port = await freePorts();
      const signature = randomBytes(32).toString('hex');
      const url = `http://127.0.0.1:${port}/bucket/workload-1/image-1.png?X-Amz-Signature=${signature}`;
      remember({ url });
      const api = await apiStandIn();
      const job = assignment({ source: { via: 'url', url } });
      const { outcome } = await run(job, api.client, { imagesDir: null, timeouts: TIMEOUTS });
      expect(outcome).to.deep.equal({
        kind: 'failed',
        error: `download of image image-1 from the object store failed: connect ECONNREFUSED 127.0.0.1:${port}`,
        retryable: true,
        storeUnavailable: true,
      });
      expectNoPresignedUrlShown();
    });
  });

  describe('what the API answers', () => {
    async function pathJob(answers: { download?: number; report?: number }, source: 'api' | 'path' = 'path') {
      const imagesDir = await imagesFolder();
      const api = await apiStandIn({ 'image-1': original });
      Object.assign(api.answers, answers);
      const job = assignment({
        source: source === 'api' ? { via: 'api' } : { via: 'path', key: 'workload-1/image-1.png' },
        target: { via: 'path', key: 'workload-1/result-1.png', mime: 'image/png' },
      });
      return { ...(await run(job, api.client, { imagesDir, timeouts: TIMEOUTS })), api };
    }

    it('a 503 to a download or to the report is a failure of the store', async () => {
      const download = await pathJob({ download: 503 }, 'api');
      expect(download.outcome).to.deep.equal({
        kind: 'failed',
        error: 'download of image image-1 failed: HTTP 503 stand-in answer 503',
        retryable: true,
        storeUnavailable: true,
      });
      const report = await pathJob({ report: 503 });
      expect(report.outcome).to.deep.equal({
        kind: 'failed',
        error: 'report of the stored result of job job-1 failed: HTTP 503 stand-in answer 503',
        retryable: true,
        storeUnavailable: true,
      });
      expectStoredReport(report.api.requests[0]);
    });

    it('a 422 to the report (the server failed the attempt itself) drops the job: no failure is reported', async () => {
      const { outcome } = await pathJob({ report: 422 });
      expect(outcome).to.deep.equal({
        kind: 'dropped',
        reason:
          'report of the stored result of job job-1 refused: HTTP 422 stand-in answer 422 ' +
          '(the server failed the attempt)',
      });
    });

    it('a 409 or 410 to the report (the lease moved on, the job is gone) drops the job', async () => {
      for (const status of [409, 410]) {
        const { outcome } = await pathJob({ report: status });
        expect(outcome).to.include({ kind: 'dropped' });
      }
    });
  });

  describe('keys in the images folder', () => {
    it('the protocol refuses a key that could leave the folder', () => {
      for (const key of ['../x.png', '/etc/passwd', 'a/b/c', 'a/../x', 'workload-1/..', './x', 'x.png', 'a\\..\\x']) {
        const source = assignParamsSchema.safeParse({ ...assignment(), source: { via: 'path', key } });
        const target = assignParamsSchema.safeParse({
          ...assignment(),
          target: { via: 'path', key, mime: 'image/png' },
        });
        expect(source.success, key).to.equal(false);
        expect(target.success, key).to.equal(false);
      }
    });

    it('the worker checks again: a key outside a workload folder fails; nothing is read or written', async () => {
      const imagesDir = await imagesFolder();
      for (const key of ['../x.png', '/etc/passwd', 'a/b/c', 'workload-1/..', 'workload-1/']) {
        expect(() => keyPath(imagesDir, key), key).to.throw('is not a file in a workload');
      }
      expect(keyPath(imagesDir, 'workload-1/image-1.png')).to.equal(path.join(imagesDir, 'workload-1', 'image-1.png'));
      // an assignment that did not come through the schema
      const api = await apiStandIn();
      const job = assignment();
      const escaping: Assignment = {
        ...job,
        source: { via: 'path', key: 'workload-1/image-1.png' },
        target: { via: 'path', key: '../outside.png', mime: 'image/png' },
      };
      const { outcome } = await run(escaping, api.client, { imagesDir, timeouts: TIMEOUTS });
      expect(outcome).to.deep.equal({
        kind: 'failed',
        error: 'the key "../outside.png" is not a file in a workload\'s folder',
        retryable: true,
      });
      expect(await readdir(path.dirname(imagesDir))).to.not.include('outside.png');
      expect(api.requests).to.have.length(0);
    });

    it('a job by path on a worker without an images folder fails this attempt only, saying why', async () => {
      const api = await apiStandIn();
      const job = assignment({ source: { via: 'path', key: 'workload-1/image-1.png' } });
      const { outcome } = await run(job, api.client, { imagesDir: null, timeouts: TIMEOUTS });
      expect(outcome).to.deep.equal({
        kind: 'failed',
        error:
          'read of image image-1 from the images folder is not possible: this worker was started without an ' +
          'images folder (--images-dir)',
        retryable: true,
      });
    });

    it('an original missing from the folder fails this attempt, naming the file', async () => {
      const imagesDir = await imagesFolder();
      const api = await apiStandIn();
      const job = assignment({ source: { via: 'path', key: 'workload-1/gone.png' } });
      const { outcome } = await run(job, api.client, { imagesDir, timeouts: TIMEOUTS });
      expect(outcome).to.include({ kind: 'failed', retryable: true });
      expect((outcome as { error: string }).error).to.match(
        /^read of image image-1 from the images folder failed: ENOENT: .*workload-1\/gone\.png/,
      );
    });
  });

  it('a failure of the store reaches the controller as store_unavailable', async () => {
    const port = await freePorts();
    const failures: FailParams[] = [];
    const controller = serveRpc(
      `tcp://127.0.0.1:${port}`,
      {
        [CONTROLLER_METHODS.fail]: method(failParamsSchema, (params) => {
          failures.push(params);
          return { accepted: true };
        }),
      },
      () => undefined,
    );
    cleanups.push(async () => controller.close());
    const rpc = connectRpc(`tcp://127.0.0.1:${port}`, 3000);
    cleanups.push(async () => rpc.close());
    // the session as reportFailure reads it: registered, with its session socket
    const session = { closed: false, token: WORKER_TOKEN, session: rpc } as unknown as ControllerSession;
    const log = pino({ level: 'silent' });
    const job = assignment();
    await reportFailure(
      session,
      job,
      { kind: 'failed', error: 'store down', retryable: true, storeUnavailable: true },
      log,
    );
    await reportFailure(session, job, { kind: 'failed', error: 'HTTP 403 Forbidden', retryable: true }, log);
    expect(failures).to.deep.equal([
      {
        token: WORKER_TOKEN,
        job_id: 'job-1',
        lease_id: 'lease-1',
        error: 'store down',
        retryable: true,
        store_unavailable: true,
      },
      { token: WORKER_TOKEN, job_id: 'job-1', lease_id: 'lease-1', error: 'HTTP 403 Forbidden', retryable: true },
    ]);
  });

  describe('images_dir_id at registration', () => {
    it("is the trimmed content of the folder's .store-id; none when it is missing, empty or too long", async () => {
      const dir = await tempDir('dpip-images-');
      expect(await readImagesDirId(dir)).to.include({ id: null });
      await writeFile(path.join(dir, STORE_ID_FILE), '  \n');
      expect(await readImagesDirId(dir)).to.include({ id: null });
      await writeFile(path.join(dir, STORE_ID_FILE), 'x'.repeat(201));
      expect(await readImagesDirId(dir)).to.include({ id: null });
      await writeFile(path.join(dir, STORE_ID_FILE), '\n 0f3c-store \n');
      expect(await readImagesDirId(dir)).to.deep.equal({ id: '0f3c-store' });
    });

    it('a worker with --images-dir (or DPIP_IMAGES_DIR) sends it, read again at each registration', async () => {
      // a controller played by the test: it announces itself, keeps what workers register with, and forgets
      // them when told to, so that they register again
      const port = await freePorts(3);
      const registered: RegisterParams[] = [];
      const forget = new Set<string>();
      const publisher = bindPublisher(`tcp://127.0.0.1:${port}`);
      cleanups.push(async () => publisher.close());
      const controller = serveRpc(
        `tcp://127.0.0.1:${port + 1}`,
        {
          [CONTROLLER_METHODS.register]: method(registerParamsSchema, (params) => {
            registered.push(params);
            return {
              worker_id: params.name,
              token: `token-${params.name}`,
              api_url: 'http://127.0.0.1:9',
              api_port: 9,
              heartbeat_ms: 100,
              lease_ms: 60_000,
            };
          }),
          [CONTROLLER_METHODS.heartbeat]: method(heartbeatParamsSchema, (params) => {
            const name = params.token.replace(/^token-/, '');
            return { known: !forget.delete(name), cancel: [] };
          }),
          [CONTROLLER_METHODS.goodbye]: method(goodbyeParamsSchema, () => ({ accepted: true })),
        },
        () => undefined,
      );
      cleanups.push(async () => controller.close());
      const announcer = setInterval(
        () =>
          publisher.publish(ANNOUNCE, {
            system_name: 'stand-in',
            register_port: port + 1,
            time: new Date().toISOString(),
          }),
        100,
      );
      cleanups.push(async () => clearInterval(announcer));

      const seen = await tempDir('dpip-images-');
      await writeFile(path.join(seen, STORE_ID_FILE), 'store-1\n');
      const unseen = await tempDir('dpip-images-');
      const spawn = (name: string, args: string[], env: Record<string, string> = {}): Spawned => {
        const worker = spawnNode(
          path.join(DIST_BIN, 'dpip-worker.js'),
          ['--controller', `127.0.0.1:${port}`, '--worker-name', name, '--engine', 'jimp', '--slots', '1', ...args],
          { DPIP_SECRET: TEST_SECRET, ...env },
        );
        cleanups.push(() => worker.kill());
        return worker;
      };
      spawn('sees', ['--images-dir', seen]);
      spawn('unseen', [], { DPIP_IMAGES_DIR: unseen });
      spawn('none', []);
      const first = (name: string): RegisterParams | undefined => registered.find((params) => params.name === name);
      await waitFor('the workers to register', async () => first('sees') && first('unseen') && first('none'));
      expect(first('sees')!.images_dir_id).to.equal('store-1');
      expect(first('unseen')).to.not.have.property('images_dir_id');
      expect(first('none')).to.not.have.property('images_dir_id');

      // the folder's identity changes; the controller forgets the worker, which registers again with the new one
      await writeFile(path.join(seen, STORE_ID_FILE), 'store-2');
      forget.add('sees');
      await waitFor('the second registration', async () =>
        registered.some((params) => params.name === 'sees' && params.images_dir_id === 'store-2'),
      );
    });
  });
});
