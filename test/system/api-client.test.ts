// The worker's HTTP client against servers that misbehave on loopback: every call ends within its connect,
// idle and total timeouts, with an error that says which one.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { ApiClient, ApiTimeoutError, type HttpTimeouts } from '../../worker/api-client.js';

const TIMEOUTS: HttpTimeouts = { connectMs: 300, idleMs: 400, totalMs: 1000 };

/** How the call ended, and after how long. */
async function outcome(call: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await call;
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected the call to fail');
}

/** The download fails on that timeout, with that message, once the timeout has passed (and not much later). */
async function expectTimeout(api: ApiClient, kind: 'connect' | 'idle' | 'total', message: string): Promise<void> {
  const { error, ms } = await outcome(api.download('image-1', new AbortController().signal));
  expect(error).to.be.instanceOf(ApiTimeoutError);
  expect((error as ApiTimeoutError).kind).to.equal(kind);
  expect((error as Error).message).to.equal(`download of image image-1 failed: ${message}`);
  const limit = { connect: TIMEOUTS.connectMs, idle: TIMEOUTS.idleMs, total: TIMEOUTS.totalMs }[kind];
  expect(ms).to.be.within(limit - 10, limit + 500);
}

describe('worker HTTP client: time limits', function () {
  this.timeout(20_000);
  const sockets = new Set<Socket>();
  const closers: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    for (const close of closers.splice(0)) await close();
  });

  function listen(server: TcpServer | HttpServer): Promise<string> {
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
    );
  }

  /** An API that takes connections and never sends a byte. */
  function silentApi(): Promise<string> {
    return listen(createTcpServer((socket) => socket.on('error', () => undefined)));
  }

  /**
   * A listener that never accepts, with its queue of connections full: the kernel drops the next handshakes,
   * so a connection attempt hangs, as to a host that does not answer. (node accepts every connection itself.)
   */
  async function unacceptingListener(): Promise<string> {
    const script = [
      'import socket, sys',
      's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
      'filler = socket.create_connection(s.getsockname())',
      'print(s.getsockname()[1], flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child: ChildProcess = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    closers.push(() => void child.kill());
    const port = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      child.once('error', reject);
    });
    return `http://127.0.0.1:${port}`;
  }

  it('a connection that is never accepted fails on the connect timeout', async () => {
    const api = new ApiClient(await unacceptingListener(), () => 'token', TIMEOUTS);
    await expectTimeout(api, 'connect', 'connect timeout: no connection within 300ms');
  });

  it('an API that accepts and never answers fails on the idle timeout', async () => {
    const api = new ApiClient(await silentApi(), () => 'token', TIMEOUTS);
    await expectTimeout(api, 'idle', 'idle timeout: nothing sent or received for 400ms');
    // an upload as well
    const result = { data: Buffer.alloc(1000), mime: 'image/png' as const, width: 1, height: 1 };
    const upload = { type: 'filtered' as const, job_id: 'job-1', lease_id: 'lease-1' };
    const failed = await outcome(api.uploadFiltered(upload, result, new AbortController().signal));
    expect((failed.error as Error).message).to.match(/^upload of job job-1 failed: idle timeout/);
  });

  it('an answer that trickles in, a byte at a time, fails on the total timeout', async () => {
    const url = await listen(
      createHttpServer((_request, response) => {
        response.writeHead(200, { 'content-type': 'image/png', 'content-length': 1_000_000 });
        const drip = setInterval(() => response.write('x'), 100);
        response.on('close', () => clearInterval(drip));
      }),
    );
    await expectTimeout(new ApiClient(url, () => 'token', TIMEOUTS), 'total', 'total timeout: not finished within 1s');
  });

  it('a cancelled call ends at once, as cancelled, not as a timeout', async () => {
    const api = new ApiClient(await silentApi(), () => 'token', TIMEOUTS);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    const { error, ms } = await outcome(api.download('image-1', abort.signal));
    expect(error).to.not.be.instanceOf(ApiTimeoutError);
    expect((error as Error).name).to.equal('AbortError');
    expect(ms).to.be.below(TIMEOUTS.idleMs);
  });

  it('calls within their limits succeed, on a kept-alive connection idle for longer than its timeouts', async () => {
    let connections = 0;
    const server = createHttpServer((_request, response) => {
      // slow, but never silent for the idle timeout
      setTimeout(() => response.end(Buffer.alloc(10, 1)), TIMEOUTS.idleMs / 2);
    });
    server.keepAliveTimeout = 10_000;
    server.on('connection', () => connections++);
    const api = new ApiClient(await listen(server), () => 'token', TIMEOUTS);
    expect(await api.download('image-1', new AbortController().signal)).to.deep.equal(Buffer.alloc(10, 1));
    // the connection waits in the pool past the idle and total timeouts of the first call: nothing fires on it
    await new Promise((resolve) => setTimeout(resolve, TIMEOUTS.totalMs + 200));
    expect(await api.download('image-2', new AbortController().signal)).to.deep.equal(Buffer.alloc(10, 1));
    expect(connections).to.equal(1);
  });
});
