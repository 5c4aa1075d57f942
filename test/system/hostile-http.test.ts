// Hostile HTTP clients against a real server (api + controller + scheduler in this process, real
// sockets on loopback): login floods, timing, slow clients, wrong content types, huge, deep and
// prototype-polluting bodies. Each case also checks that the server keeps serving others.
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { startServer, type Server } from '../../bin/server.js';
import { parseServerArgs } from '../../bin/server-cli.js';
import { parseWorkerArgs } from '../../bin/worker-cli.js';
import { RateLimiter, clientKey, parseRateLimit } from '../../api/rate-limit.js';
import { createLogger } from '../../common/log.js';
import { makeDirs, testServerConfig, type TestDirs } from '../helpers/system.js';
import { call, type Reply } from '../helpers/raw-http.js';

function expectJsonError(reply: Reply, status: number, message?: RegExp): void {
  expect(reply.status, reply.text).to.equal(status);
  expect(reply.headers['content-type'], reply.text).to.match(/^application\/json/);
  expect(reply.json.error?.code, reply.text).to.equal(status);
  expect(reply.json.error?.message).to.be.a('string').and.not.equal('');
  if (message) expect(reply.json.error?.message).to.match(message);
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A raw TCP client: what it received, and when the server closed the connection. */
interface RawClient {
  socket: Socket;
  received(): string;
  closed: Promise<number>;
}

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now())));
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` one byte every `everyMs` until done or the socket is closed. */
async function trickle(client: RawClient, text: string, everyMs: number): Promise<void> {
  for (const byte of text) {
    if (client.socket.destroyed || !client.socket.writable) return;
    client.socket.write(byte);
    await sleep(everyMs);
  }
}

describe('hostile HTTP clients', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let server: Server;
  let port: number;
  let aliceToken: string;

  async function login(user: string, password: string, from?: string): Promise<Reply> {
    return call(port, {
      method: 'POST',
      path: '/login',
      headers: { authorization: basic(user, password), ...(from ? { 'x-forwarded-for': from } : {}) },
    });
  }

  /** Collection sizes and the image files: what a refused request must not change. */
  async function snapshot(): Promise<string> {
    const data = server.controller.store.data;
    const files = await readdir(dirs.imagesDir, { recursive: true }).catch(() => [] as string[]);
    return JSON.stringify({
      users: Object.keys(data.users).length,
      workloads: Object.keys(data.workloads).length,
      images: Object.keys(data.images).length,
      jobs: Object.keys(data.jobs).length,
      files: files.sort(),
    });
  }

  before(async () => {
    dirs = await makeDirs();
    const config = await testServerConfig(dirs);
    config.api = {
      ...config.api,
      loginRateLimit: { attempts: 5, windowMs: 5_000 },
      loginRateLimitPerClient: { attempts: 20, windowMs: 60_000 },
      trustProxy: 'loopback',
      headersTimeoutMs: 1_000,
      requestTimeoutMs: 2_000,
      keepAliveTimeoutMs: 1_000,
    };
    server = await startServer(config, createLogger('hostile-http', 'silent'));
    port = server.api.port;
    // issued directly: a login would spend one of alice's attempts
    aliceToken = server.controller.tokens.issue('alice', 'user').token;
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  describe('login flood rate limiting', () => {
    it(
      'after 5 attempts on one username: 429 JSON with Retry-After, even with the right password; ' +
        'another user from another address still logs in',
      async () => {
        const attacker = '203.0.113.7';
        for (let attempt = 1; attempt <= 5; attempt++)
          expectJsonError(await login('alice', `guess-${attempt}`, attacker), 401);
        const limited = await login('alice', 'guess-6', attacker);
        expectJsonError(limited, 429, /too many login attempts/);
        const retryAfter = Number(limited.headers['retry-after']);
        expect(retryAfter).to.be.a('number').and.to.be.at.least(1).and.at.most(5);
        // no oracle while limited: the right password gets the same 429
        expectJsonError(await login('alice', 'alice-pw', attacker), 429);
        // the limit is per username: bob, from another address, is not affected
        const bob = await login('bob', 'bob-pass', '198.51.100.2');
        expect(bob.status, bob.text).to.equal(200);
        expect(bob.json.user).to.equal('bob');
        // and the same flood on a username that does not exist is limited the same way (no enumeration)
        for (let attempt = 1; attempt <= 5; attempt++)
          expectJsonError(await login('nobody-at-all', `guess-${attempt}`, attacker), 401);
        expectJsonError(await login('nobody-at-all', 'guess-6', attacker), 429, /too many login attempts/);
      },
    );

    it('lets the username try again once Retry-After has passed', async () => {
      const name = `retry-${randomBytes(3).toString('hex')}`;
      const from = '203.0.113.8';
      for (let attempt = 1; attempt <= 5; attempt++) expectJsonError(await login(name, 'nope', from), 401);
      const limited = await login(name, 'nope', from);
      expectJsonError(limited, 429);
      await sleep(Number(limited.headers['retry-after']) * 1000 + 100);
      expectJsonError(await login(name, 'nope', from), 401);
    });

    it(
      'limits one client address over many usernames (GET, POST JSON, /register alike); ' +
        'other addresses are unaffected',
      async () => {
        const from = '203.0.113.9';
        const attempts: Promise<Reply>[] = [];
        for (let index = 0; index < 20; index++) {
          const user = `spray-${index}-${randomBytes(2).toString('hex')}`;
          if (index % 3 === 0)
            attempts.push(
              call(port, { path: '/login', headers: { authorization: basic(user, 'pw-pw'), 'x-forwarded-for': from } }),
            );
          else if (index % 3 === 1)
            attempts.push(
              call(port, {
                method: 'POST',
                path: '/login',
                headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
                body: JSON.stringify({ username: user, password: 'pw-pw' }),
              }),
            );
          else
            attempts.push(
              call(port, {
                method: 'POST',
                path: '/register',
                headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
                body: JSON.stringify({ username: `x${user}`, password: 'x' }),
              }),
            );
        }
        for (const reply of await Promise.all(attempts)) expect(reply.status, reply.text).to.be.oneOf([400, 401]);
        const before = await snapshot();
        expectJsonError(
          await call(port, {
            path: '/login',
            headers: { authorization: basic('fresh-name', 'pw-pw'), 'x-forwarded-for': from },
          }),
          429,
        );
        expectJsonError(
          await call(port, {
            method: 'POST',
            path: '/register',
            headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
            body: JSON.stringify({ username: 'fresh-user-1', password: 'good-password' }),
          }),
          429,
        );
        expect(await snapshot(), 'the refused registration created nobody').to.equal(before);
        const other = await login('bob', 'bob-pass', '198.51.100.3');
        expect(other.status, other.text).to.equal(200);
      },
    );

    it(
      'answers a flood of 300 parallel attempts quickly with 429 ' +
        '(no password hashing for refused attempts) and keeps serving',
      async () => {
        const from = '203.0.113.10';
        const started = Date.now();
        const replies = await Promise.all(
          Array.from({ length: 300 }, (_, index) => login(`flood-${index}`, 'pw-pw', from)),
        );
        const elapsed = Date.now() - started;
        const statuses = replies.map((reply) => reply.status);
        expect(statuses.every((status) => status === 401 || status === 429)).to.equal(true);
        // 20 at once, then one more every 3 s
        expect(statuses.filter((status) => status === 401).length).to.be.at.most(20 + Math.ceil(elapsed / 3_000));
        expect(elapsed, 'refusals are cheap').to.be.below(10_000);
        const status = await call(port, { path: '/status', headers: { authorization: `Bearer ${aliceToken}` } });
        expect(status.status).to.equal(200);
      },
    );

    it('keeps at most maxKeys buckets (least recently used forgotten first), and parses limits', () => {
      let now = 0;
      const limiter = new RateLimiter({ attempts: 2, windowMs: 1_000 }, 100, () => now);
      for (let index = 0; index < 10_000; index++) limiter.take(`user-${index}`);
      expect(limiter.size).to.be.at.most(100);
      limiter.take('hot');
      limiter.take('hot');
      expect(limiter.wait('hot')).to.equal(500);
      now += 500;
      expect(limiter.wait('hot')).to.equal(0);
      now += 10_000;
      limiter.take('later'); // refilled buckets are dropped as new ones come
      expect(limiter.size).to.be.below(100);
      expect(parseRateLimit('10/10s')).to.deep.equal({ attempts: 10, windowMs: 10_000 });
      expect(parseRateLimit('5/500ms')).to.deep.equal({ attempts: 5, windowMs: 500 });
      expect(parseRateLimit('100/1m')).to.deep.equal({ attempts: 100, windowMs: 60_000 });
      expect(parseRateLimit('off')).to.equal(null);
      expect(() => parseRateLimit('ten per second')).to.throw(/rate limit/);
      expect(clientKey('::ffff:10.1.2.3')).to.equal('10.1.2.3');
      expect(clientKey('2001:db8:1:2:aaaa::1')).to.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
      expect(clientKey('2001:db8:1:2::1')).to.not.equal(clientKey('2001:db8:1:3::1'));
    });
  });

  describe('login backoff after failed logins in a row', () => {
    let backoffDirs: TestDirs;
    let backoffServer: Server;

    const attempt = (user: string, password: string, from: string): Promise<Reply> =>
      call(backoffServer.api.port, {
        method: 'POST',
        path: '/login',
        headers: { authorization: basic(user, password), 'x-forwarded-for': from },
      });

    before(async () => {
      backoffDirs = await makeDirs();
      const config = await testServerConfig(backoffDirs);
      config.api = {
        ...config.api,
        trustProxy: 'loopback',
        loginBackoff: { failures: 3, firstDelayMs: 1000, maxDelayMs: 4000 },
        loginBackoffPerClient: { failures: 6, firstDelayMs: 1000, maxDelayMs: 4000 },
      };
      backoffServer = await startServer(config, createLogger('hostile-http-backoff', 'silent'));
    });

    after(async () => {
      await backoffServer?.close();
      await backoffDirs?.remove();
    });

    it(
      'per username, whatever the address: after 3 failures 429 with Retry-After, even for the right password; ' +
        'the wait doubles; a success starts afresh',
      async () => {
        // a guesser that takes another address (another /64) for every attempt
        for (let index = 1; index <= 3; index++)
          expectJsonError(await attempt('alice', `guess-${index}`, `2001:db8:${index}::1`), 401);
        const refused = await attempt('alice', 'guess-4', '2001:db8:4::1');
        expectJsonError(refused, 429, /^too many failed login attempts for this username: try again in 1 s$/);
        expect(refused.headers['retry-after']).to.equal('1');
        expectJsonError(await attempt('alice', 'alice-pw', '198.51.100.20'), 429);
        expect((await attempt('bob', 'bob-pass', '198.51.100.21')).status, 'other users are not affected').to.equal(
          200,
        );
        await sleep(1100);
        expectJsonError(await attempt('alice', 'guess-5', '2001:db8:5::1'), 401);
        expectJsonError(await attempt('alice', 'alice-pw', '198.51.100.20'), 429, /try again in 2 s/);
        await sleep(2100);
        const success = await attempt('alice', 'alice-pw', '198.51.100.20');
        expect(success.status, success.text).to.equal(200);
        for (let index = 1; index <= 3; index++)
          expectJsonError(await attempt('alice', `again-${index}`, '198.51.100.22'), 401);
        expectJsonError(await attempt('alice', 'again-4', '198.51.100.22'), 429, /for this username/);
      },
    );

    it('lets no more than 3 parallel attempts through on a fresh name, whether or not it exists', async () => {
      for (const user of ['bob', 'nobody-here']) {
        const replies = await Promise.all(
          Array.from({ length: 10 }, (_, index) => attempt(user, `parallel-${index}`, `198.51.100.${40 + index}`)),
        );
        const statuses = replies.map((reply) => reply.status).sort();
        expect(statuses, user).to.deep.equal([401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
      }
    });

    it('per address (an IPv6 client by its /64), over many usernames; other addresses are unaffected', async () => {
      for (let index = 1; index <= 6; index++)
        expectJsonError(await attempt(`spray-${index}`, 'Summer-2025', `2001:db8:aa:bb::${index}`), 401);
      expectJsonError(
        await attempt('spray-7', 'Summer-2025', '2001:db8:aa:bb:ffff::7'),
        429,
        /^too many failed login attempts from this address: try again in 1 s$/,
      );
      const other = await attempt('carol', 'Summer-2025', '2001:db8:aa:cc::1');
      expectJsonError(other, 401);
    });
  });

  describe('server flags', () => {
    const parse = (...flags: string[]) => parseServerArgs(['--secret', 'flag-test', ...flags], {});

    it('default to 10/10s per username, 50/10s per client, no trusted proxy, 20 s / 120 s / 5 s timeouts', async () => {
      const { api } = (await parse()).server;
      expect(api.loginRateLimit).to.deep.equal({ attempts: 10, windowMs: 10_000 });
      expect(api.loginRateLimitPerClient).to.deep.equal({ attempts: 50, windowMs: 10_000 });
      expect(api.trustProxy).to.equal(false);
      expect([api.headersTimeoutMs, api.requestTimeoutMs, api.keepAliveTimeoutMs]).to.deep.equal([
        20_000, 120_000, 5_000,
      ]);
    });

    it('take a login backoff: 5 failures per username, 20 per address, 1 s doubling to 15 min', async () => {
      const { api } = (await parse()).server;
      expect(api.loginBackoff).to.deep.equal({ failures: 5, firstDelayMs: 1000, maxDelayMs: 900_000 });
      expect(api.loginBackoffPerClient).to.deep.equal({ failures: 20, firstDelayMs: 1000, maxDelayMs: 900_000 });
      const other = (await parse('--login-backoff', 'off', '--login-backoff-client', '3', '--login-backoff-max', '1h'))
        .server.api;
      expect(other.loginBackoff).to.equal(null);
      expect(other.loginBackoffPerClient).to.deep.equal({ failures: 3, firstDelayMs: 1000, maxDelayMs: 3_600_000 });
      for (const [name, value] of [
        ['login-backoff', 'five'],
        ['login-backoff-client', '-2'],
        ['login-backoff-max', '500ms'],
        ['login-backoff-max', 'soon'],
      ] as const)
        await parse(`--${name}`, value).then(
          () => expect.fail(`--${name} ${value} was accepted`),
          (error: unknown) => expect(String(error)).to.match(new RegExp(`--${name}`)),
        );
    });

    it('take a datastore: lowdb unless given, or a PostgreSQL URL; anything else names the flag', async () => {
      expect((await parse()).server.controller.datastore).to.deep.equal({ kind: 'lowdb' });
      const url = 'postgres://dpip:secret@db.lan:5432/dpip';
      expect((await parse('--datastore', url)).server.controller.datastore).to.deep.equal({ kind: 'postgres', url });
      process.env.DPIP_DATASTORE = 'postgresql://db/x';
      try {
        const fromEnv = await parse();
        expect(fromEnv.server.controller.datastore).to.deep.equal({ kind: 'postgres', url: 'postgresql://db/x' });
      } finally {
        delete process.env.DPIP_DATASTORE;
      }
      for (const bad of ['mysql://db/x', 'postgres://[bad', 'lowdb2', ''])
        await parse('--datastore', bad).then(
          () => expect.fail(`--datastore ${bad} was accepted`),
          (error: unknown) => expect(String(error)).to.match(/--datastore: .*postgres/),
        );
    });

    it('take a minimum password length: 8 unless given, from 1 to 1024', async () => {
      expect((await parse()).server.api.minPasswordLength).to.equal(8);
      expect((await parse('--min-password-length', '12')).server.api.minPasswordLength).to.equal(12);
      for (const bad of ['0', '1025', '7.5'])
        await parse('--min-password-length', bad).then(
          () => expect.fail(`--min-password-length ${bad} was accepted`),
          (error: unknown) => expect(String(error)).to.match(/--min-password-length/),
        );
    });

    it('take other values, "off", proxies and timeouts', async () => {
      const { api } = (
        await parse(
          '--login-rate-limit',
          '3/500ms',
          '--login-rate-limit-client',
          'off',
          '--trust-proxy',
          'loopback,10.0.0.0/8',
          '--headers-timeout-ms',
          '5000',
          '--request-timeout-ms',
          '0',
          '--keep-alive-timeout-ms',
          '1000',
        )
      ).server;
      expect(api.loginRateLimit).to.deep.equal({ attempts: 3, windowMs: 500 });
      expect(api.loginRateLimitPerClient).to.equal(null);
      expect(api.trustProxy).to.equal('loopback,10.0.0.0/8');
      expect([api.headersTimeoutMs, api.requestTimeoutMs, api.keepAliveTimeoutMs]).to.deep.equal([5_000, 0, 1_000]);
      expect((await parse('--trust-proxy', '2')).server.api.trustProxy).to.equal(2);
    });

    it('take the last value of a flag given twice, for the server and the worker', async () => {
      const config = await parse('--log-level', 'warn', '--log-level', 'debug', '--port', '9000', '--port', '9001');
      expect(config.logLevel).to.equal('debug');
      expect(config.server.api.port).to.equal(9001);
      const worker = parseWorkerArgs(
        [
          '--controller',
          'localhost:40899',
          '--worker-name',
          'w',
          '--worker-name',
          'w2',
          '--log-level',
          'info',
          '--log-level',
          'warn',
          '--secret',
          's',
        ],
        {},
      );
      expect([worker.name, worker.logLevel]).to.deep.equal(['w2', 'warn']);
    });

    for (const [flags, message] of [
      [['--login-rate-limit', 'lots'], /--login-rate-limit/],
      [['--login-rate-limit-client', '0/10s'], /--login-rate-limit-client/],
      [['--trust-proxy', 'not-an-address'], /--trust-proxy/],
      [['--headers-timeout-ms', '10'], /--headers-timeout-ms/],
      [['--headers-timeout-ms', '30000', '--request-timeout-ms', '20000'], /--request-timeout-ms/],
      [['--keep-alive-timeout-ms', '0'], /--keep-alive-timeout-ms/],
    ] as const) {
      it(`refuse ${flags.join(' ')}`, async () => {
        const error = await parse(...flags).catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(Error);
        expect((error as Error).message).to.match(message);
      });
    }
  });

  describe('no user enumeration by timing', () => {
    let quiet: Server;
    let quietDirs: TestDirs;

    before(async () => {
      quietDirs = await makeDirs();
      // no rate limit here: 40 attempts on purpose
      quiet = await startServer(await testServerConfig(quietDirs), createLogger('timing', 'silent'));
    });

    after(async () => {
      await quiet?.close();
      await quietDirs?.remove();
    });

    it(
      'a wrong password for an existing user takes about as long as an unknown user ' +
        '(median of 20 each, within 3x)',
      async () => {
        const time = async (user: string): Promise<number> => {
          const started = process.hrtime.bigint();
          const reply = await call(quiet.api.port, {
            method: 'POST',
            path: '/login',
            headers: { authorization: basic(user, 'wrong-password') },
          });
          expect(reply.status).to.equal(401);
          return Number(process.hrtime.bigint() - started) / 1e6;
        };
        await time('alice'); // warm up
        await time('ghost');
        const existing: number[] = [];
        const unknown: number[] = [];
        for (let index = 0; index < 20; index++) {
          existing.push(await time('alice'));
          unknown.push(await time(`ghost-${index}`));
        }
        const [a, b] = [median(existing), median(unknown)];
        expect(
          Math.max(a, b) / Math.min(a, b),
          `medians ${a.toFixed(1)} ms (existing) vs ${b.toFixed(1)} ms (unknown)`,
        ).to.be.below(3);
      },
    );
  });

  describe('slow clients', () => {
    it(
      'closes a slowloris connection (headers one byte every 200 ms) ' +
        'after the 1 s headers timeout with a 408 JSON, serving others meanwhile',
      async () => {
        const clients = await Promise.all(Array.from({ length: 10 }, () => rawClient(port)));
        const started = Date.now();
        const header =
          `GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${aliceToken}\r\n` +
          `X-Slow: ${'z'.repeat(100)}\r\n\r\n`;
        for (const client of clients) void trickle(client, header, 200);
        // meanwhile, others are served at once
        for (let index = 0; index < 5; index++) {
          const before = Date.now();
          const reply = await call(port, { path: '/status', headers: { authorization: `Bearer ${aliceToken}` } });
          expect(reply.status).to.equal(200);
          expect(Date.now() - before).to.be.below(500);
          await sleep(100);
        }
        const closedAt = await Promise.all(clients.map((client) => client.closed));
        for (const [index, at] of closedAt.entries()) {
          expect(at - started, 'closed soon after the headers timeout').to.be.within(800, 3_500);
          const received = clients[index]!.received();
          expect(received).to.match(/^HTTP\/1\.1 408 /);
          expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).to.deep.equal({
            error: { code: 408, message: 'the request took too long to arrive' },
          });
        }
      },
    );

    it('closes a connection that sends nothing at all', async () => {
      const client = await rawClient(port);
      const started = Date.now();
      const closedAt = await client.closed;
      expect(closedAt - started).to.be.below(5_000);
    });

    it(
      'closes a slow body (one byte every 200 ms) after the 2 s request timeout, ' +
        'on JSON and on multipart routes, creating nothing',
      async () => {
        const before = await snapshot();
        const json = await rawClient(port);
        const multipart = await rawClient(port);
        const started = Date.now();
        const body = JSON.stringify({ workload_name: 'slow-body-workload', filter: 'blur', padding: 'p'.repeat(200) });
        json.socket.write(
          `POST /workloads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceToken}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        multipart.socket.write(
          `POST /images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceToken}\r\n` +
            'Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n',
        );
        void trickle(json, body, 200);
        void trickle(
          multipart,
          `--B\r\nContent-Disposition: form-data; name="data"; filename="a.png"\r\n\r\n${'x'.repeat(500)}`,
          200,
        );
        const [jsonClosed, multipartClosed] = await Promise.all([json.closed, multipart.closed]);
        for (const [client, at] of [
          [json, jsonClosed],
          [multipart, multipartClosed],
        ] as const) {
          expect(at - started).to.be.within(1_500, 5_000);
          expect(client.received()).to.match(/^HTTP\/1\.1 408 [\s\S]*"code":408/);
        }
        expect(await snapshot()).to.equal(before);
        expect(
          (await call(port, { path: '/status', headers: { authorization: `Bearer ${aliceToken}` } })).status,
        ).to.equal(200);
      },
    );

    it('closes the file of a download whose client went away (no file descriptor leak)', async () => {
      // the API checks only the header: a PNG header and 5 MB of padding is a big file to download
      const header = Buffer.from(
        'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
        'base64',
      );
      const big = Buffer.concat([header, Buffer.alloc(5 * 1024 * 1024 - header.length - 1024)]);
      const workload = await call(port, {
        method: 'POST',
        path: '/workloads',
        headers: { authorization: `Bearer ${aliceToken}` },
      });
      const boundary = 'DownloadBoundary';
      const body = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="workload_id"\r\n\r\n` +
            `${String(workload.json.workload_id)}\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="data"; filename="big.png"\r\n` +
            'Content-Type: image/png\r\n\r\n',
        ),
        big,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const uploaded = await call(port, {
        method: 'POST',
        path: '/images',
        headers: { authorization: `Bearer ${aliceToken}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      });
      expect(uploaded.status, uploaded.text).to.equal(201);
      const openFiles = () => readdirSync('/proc/self/fd').length;
      const before = openFiles();
      for (let index = 0; index < 20; index++) {
        const client = await rawClient(port);
        client.socket.write(
          `GET /images/${String(uploaded.json.image_id)} HTTP/1.1\r\n` +
            `Host: x\r\nAuthorization: Bearer ${aliceToken}\r\n\r\n`,
        );
        while (!client.received().includes('\r\n\r\n')) await sleep(5);
        client.socket.pause();
        client.socket.destroy();
        await client.closed;
      }
      await sleep(300);
      expect(openFiles() - before, 'file descriptors left open').to.be.below(5);
    });

    it('answers an oversized header with 431 JSON and a malformed request line with 400 JSON', async () => {
      const big = await call(port, { path: '/status', headers: { 'x-big': 'b'.repeat(20_000) } });
      expectJsonError(big, 431);
      const client = await rawClient(port);
      client.socket.write('THIS IS NOT HTTP\r\n\r\n');
      await client.closed;
      expect(client.received()).to.match(/^HTTP\/1\.1 400 [\s\S]*"code":400/);
    });
  });

  describe('bodies', () => {
    const bearer = () => ({ authorization: `Bearer ${aliceToken}` });
    const routes = ['/login', '/register', '/workloads', '/images'] as const;

    const contentTypes: { type: string; body: string }[] = [
      { type: 'text/plain', body: 'username=alice&password=alice-pw&workload_name=ct-text&filter=blur' },
      {
        type: 'application/xml',
        body:
          '<workload><workload_name>ct-xml</workload_name><username>ct-xml</username>' +
          '<password>ct-xml-pw</password></workload>',
      },
      {
        type: 'multipart/form-data',
        body: '--x\r\nContent-Disposition: form-data; name="workload_name"\r\n\r\nct-multi\r\n--x--\r\n',
      },
      {
        type: 'application/octet-stream',
        body: '{"username":"ct-octet","password":"ct-octet-pw","workload_name":"ct-octet"}',
      },
      { type: 'application/json; charset=iso-8859-1', body: '{"username":"ct-latin1","password":"ct-latin1-pw"}' },
      { type: '', body: '{"username":"ct-none","password":"ct-none-pw","workload_name":"ct-none"}' },
    ];
    for (const route of routes) {
      for (const { type, body } of contentTypes) {
        it(`POST ${route} with content type ${JSON.stringify(type)}: a clear JSON 4xx, nothing created`, async () => {
          const before = await snapshot();
          const headers: Record<string, string> = {
            ...bearer(),
            'x-forwarded-for': `198.18.0.${routes.indexOf(route) + 1}`,
          };
          if (type) headers['content-type'] = type;
          const reply = await call(port, { method: 'POST', path: route, headers, body });
          const expected = type.startsWith('multipart/') || route === '/images' ? 400 : 415;
          // an octet-stream body to /images is an image sent whole, whose fields go in the query string
          const message =
            route === '/images'
              ? type === 'application/octet-stream'
                ? /workload_id/
                : /multipart/
              : type.startsWith('multipart/')
                ? /multipart/
                : /content type|charset/;
          expectJsonError(reply, expected, message);
          expect(await snapshot()).to.equal(before);
        });
      }
    }

    it('an empty body with any content type still creates a workload with defaults (the contract)', async () => {
      const reply = await call(port, {
        method: 'POST',
        path: '/workloads',
        headers: { ...bearer(), 'content-type': 'text/plain' },
        body: '',
      });
      expect(reply.status, reply.text).to.equal(201);
      expect(reply.json.filter).to.equal('grayscale');
    });

    const huge = JSON.stringify({ username: 'huge', password: 'p'.repeat(200_000), workload_name: 'huge' });
    for (const route of ['/register', '/workloads', '/login'] as const) {
      it(`a 200 KB JSON body to ${route} is 413 JSON, also sent chunked`, async () => {
        const before = await snapshot();
        expectJsonError(
          await call(port, {
            method: 'POST',
            path: route,
            headers: { ...bearer(), 'content-type': 'application/json', 'x-forwarded-for': '198.18.1.1' },
            body: huge,
          }),
          413,
          /limit/,
        );
        // chunked: no content length to refuse up front, the limit stops it while reading
        const chunked = await new Promise<Reply>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port,
              method: 'POST',
              path: route,
              headers: { ...bearer(), 'content-type': 'application/json', 'x-forwarded-for': '198.18.1.2' },
              agent: false,
            },
            (res) => {
              let text = '';
              res.on('data', (chunk: Buffer) => (text += chunk.toString()));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  headers: res.headers,
                  text,
                  json: JSON.parse(text) as Reply['json'],
                }),
              );
            },
          );
          req.on('error', reject);
          for (let offset = 0; offset < huge.length; offset += 16_384) req.write(huge.slice(offset, offset + 16_384));
          req.end();
        });
        expectJsonError(chunked, 413);
        expect(await snapshot()).to.equal(before);
      });
    }

    for (const route of ['/workloads', '/login', '/images'] as const) {
      it(`a declared 10 GB body to ${route} is refused with 413 at once, and the connection closed`, async () => {
        const client = await rawClient(port);
        const started = Date.now();
        const type = route === '/images' ? 'multipart/form-data; boundary=B' : 'application/json';
        client.socket.write(
          `POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceToken}\r\n` +
            `Content-Type: ${type}\r\nContent-Length: 10000000000\r\n\r\n{"filter":`,
        );
        const closedAt = await client.closed;
        expect(client.received()).to.match(/^HTTP\/1\.1 413 [\s\S]*"code":413/);
        expect(closedAt - started).to.be.below(1_000);
      });
    }

    const deep = (depth: number, open: string, close: string, inner = '1') =>
      `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
    const deepBodies: { title: string; route: '/login' | '/register' | '/workloads'; body: string; status: number }[] =
      [
        {
          title: 'a workload_name nested 20000 arrays deep',
          route: '/workloads',
          body: `{"workload_name":${deep(20_000, '[', ']')}}`,
          status: 400,
        },
        {
          title: 'tags nested 5000 objects deep',
          route: '/workloads',
          body: `{"tags":${deep(5_000, '{"a":', '}')}}`,
          status: 400,
        },
        { title: 'a bare array nested 30000 deep', route: '/workloads', body: deep(30_000, '[', ']'), status: 400 },
        {
          title: 'a username nested 5000 objects deep',
          route: '/login',
          body: `{"username":${deep(5_000, '{"a":', '}')},"password":"x"}`,
          status: 401,
        },
        {
          title: 'a password nested 20000 arrays deep',
          route: '/register',
          body: `{"username":"deep-user","password":${deep(20_000, '[', ']')}}`,
          status: 400,
        },
      ];
    for (const { title, route, body, status } of deepBodies) {
      it(`deeply nested JSON: ${title} to ${route} is ${status} JSON, nothing created`, async () => {
        const before = await snapshot();
        expectJsonError(
          await call(port, {
            method: 'POST',
            path: route,
            headers: { ...bearer(), 'content-type': 'application/json', 'x-forwarded-for': '198.18.2.1' },
            body,
          }),
          status,
        );
        expect(await snapshot()).to.equal(before);
      });
    }

    for (const route of ['/login', '/register', '/workloads'] as const) {
      for (const body of [
        '[]',
        '[{"username":"alice","password":"alice-pw","filter":"blur","workload_name":"from-array"}]',
        '"alice"',
        '42',
        'null',
      ]) {
        it(
          `a JSON ${body.length > 10 ? 'array of an object' : body} body ` + `to ${route} is 400 JSON, nothing created`,
          async () => {
            const before = await snapshot();
            expectJsonError(
              await call(port, {
                method: 'POST',
                path: route,
                headers: { ...bearer(), 'content-type': 'application/json', 'x-forwarded-for': '198.18.3.1' },
                body,
              }),
              400,
              /object|JSON/,
            );
            expect(await snapshot()).to.equal(before);
          },
        );
      }
    }

    const polluting: { title: string; type: string; body: string; workloadStatus?: number }[] = [
      {
        title: 'JSON __proto__',
        type: 'application/json',
        body:
          '{"__proto__":{"admin":true,"filter":"blur","username":"alice",' +
          '"password":"alice-pw","workload_name":"polluted-1"}}',
      },
      {
        title: 'JSON constructor.prototype',
        type: 'application/json',
        body: '{"constructor":{"prototype":{"admin":true,"filter":"blur","workload_name":"polluted-2"}}}',
      },
      {
        title: 'JSON __proto__ next to real fields',
        type: 'application/json',
        body: '{"username":"polluter","password":"polluter-pw","__proto__":{"admin":true}}',
      },
      {
        title: 'form __proto__[admin]',
        type: 'application/x-www-form-urlencoded',
        body: '__proto__[admin]=true&__proto__=x&constructor[prototype][admin]=true',
      },
      {
        title: 'multipart __proto__[admin], a[__proto__][admin] and constructor[prototype][admin]',
        type: 'multipart/form-data; boundary=P',
        body: `${['__proto__[admin]', 'a[__proto__][admin]', 'constructor[prototype][admin]', 'b[0][__proto__][admin]']
          .map((name) => `--P\r\nContent-Disposition: form-data; name="${name}"\r\n\r\ntrue\r\n`)
          .join('')}--P--\r\n`,
      },
      {
        title: 'multipart tags[__proto__][admin]',
        type: 'multipart/form-data; boundary=P',
        body: '--P\r\nContent-Disposition: form-data; name="tags[__proto__][admin]"\r\n\r\ntrue\r\n--P--\r\n',
        workloadStatus: 400,
      },
    ];
    for (const route of ['/login', '/register', '/workloads'] as const) {
      for (const { title, type, body, workloadStatus = 201 } of polluting) {
        it(`${title} to ${route}: nothing polluted, a clear error or the defaults`, async () => {
          const reply = await call(port, {
            method: 'POST',
            path: route,
            headers: { ...bearer(), 'content-type': type, 'x-forwarded-for': '198.18.4.1' },
            body,
          });
          expect(({} as Record<string, unknown>).admin).to.equal(undefined);
          expect(Object.prototype).to.not.have.property('admin');
          expect(reply.headers['content-type']).to.match(/^application\/json/);
          if (route === '/login') {
            expectJsonError(reply, 401); // credentials under __proto__ are not credentials
          } else if (route === '/register') {
            if (reply.status === 201) expect(reply.json.user).to.equal('polluter');
            else expectJsonError(reply, 400);
          } else if (workloadStatus === 400) {
            expectJsonError(reply, 400, /tags/);
          } else {
            expect(reply.status, reply.text).to.equal(201);
            expect(reply.json.filter, 'fields under __proto__ are ignored').to.equal('grayscale');
            expect(String(reply.json.workload_name)).to.match(/^workload-/);
          }
        });
      }
    }
  });

  describe("uploads into another user's workload", () => {
    const MB = 1024 * 1024;
    let uploadDirs: TestDirs;
    let uploadServer: Server;
    let aliceUpload: string;
    let bobsWorkload: string;

    before(async () => {
      uploadDirs = await makeDirs();
      const config = await testServerConfig(uploadDirs);
      config.api.maxUploadBytes = 32 * MB;
      uploadServer = await startServer(config, createLogger('hostile-http-upload', 'silent'));
      aliceUpload = uploadServer.controller.tokens.issue('alice', 'user').token;
      const bobToken = uploadServer.controller.tokens.issue('bob', 'user').token;
      const created = await call(uploadServer.api.port, {
        method: 'POST',
        path: '/workloads',
        headers: { authorization: `Bearer ${bobToken}` },
      });
      expect(created.status, created.text).to.equal(201);
      bobsWorkload = String(created.json.workload_id);
    });

    after(async () => {
      await uploadServer?.close();
      await uploadDirs?.remove();
    });

    /**
     * Sends `head`, then `size` zero bytes, each write only once the socket has taken the one before,
     * then `tail`; stops sending as soon as the server answers. Resolves with the answer and how many of
     * the `size` bytes had been handed to the socket by then: those the server read, and those the
     * kernel buffers hold on both sides (about 4 MB on loopback here) when it reads nothing.
     */
    function pushUntilAnswered(head: string, size: number, tail = ''): Promise<{ answer: string; sent: number }> {
      return new Promise((resolve) => {
        const socket = connect(uploadServer.api.port, '127.0.0.1');
        const chunk = Buffer.alloc(256 * 1024);
        let answer = '';
        let sent = 0;
        let settled = false;
        const finish = (): void => {
          if (settled) return;
          settled = true;
          socket.destroy();
          resolve({ answer, sent });
        };
        const pump = (): void => {
          while (answer === '' && sent < size) {
            const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
            sent += piece.length;
            if (!socket.write(piece)) {
              socket.once('drain', pump);
              return;
            }
          }
          if (answer === '' && tail) socket.write(tail);
        };
        socket.on('connect', () => {
          socket.write(head);
          pump();
        });
        socket.on('data', (data: Buffer) => {
          if (answer === '') setTimeout(finish, 300); // the rest of the answer, or the close
          answer += data.toString('latin1');
        });
        socket.on('error', () => undefined);
        socket.on('close', finish);
      });
    }

    const FILE_PART =
      '--B\r\nContent-Disposition: form-data; name="data"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n';
    const workloadPart = (id: string): string =>
      `--B\r\nContent-Disposition: form-data; name="workload_id"\r\n\r\n${id}\r\n`;

    /** Alice's multipart upload: `before`, a file of `size` zero bytes, `after` (sent by pushUntilAnswered). */
    function pushMultipart(before: string, size: number, after: string): Promise<{ answer: string; sent: number }> {
      const preamble = `${before}${FILE_PART}`;
      const tail = `\r\n${after}--B--\r\n`;
      return pushUntilAnswered(
        `POST /images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceUpload}\r\n` +
          'Content-Type: multipart/form-data; boundary=B\r\n' +
          `Content-Length: ${Buffer.byteLength(preamble) + size + Buffer.byteLength(tail)}\r\n\r\n${preamble}`,
        size,
        tail,
      );
    }

    async function nothingStaged(): Promise<void> {
      expect(Object.keys(uploadServer.controller.store.data.images)).to.deep.equal([]);
      const staging = path.dirname(uploadServer.controller.images.stagingPath());
      expect(await readdir(staging).catch(() => [] as string[])).to.deep.equal([]);
    }

    it('refuses a 20 MB whole-body upload with 404 before reading it, and closes the connection', async () => {
      const size = 20 * MB;
      const { answer, sent } = await pushUntilAnswered(
        `POST /images?workload_id=${bobsWorkload} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aliceUpload}\r\n` +
          `Content-Type: image/png\r\nContent-Length: ${size}\r\n\r\n`,
        size,
      );
      expect(answer).to.match(/^HTTP\/1\.1 404 [\s\S]*no workload with id/);
      expect(sent, 'bytes sent when the answer came').to.be.below(size / 2);
      expect(answer).to.match(/\r\nConnection: close\r\n/i);
      await nothingStaged();
    });

    for (const workloadId of ['other', 'missing'] as const) {
      it(
        `refuses a 20 MB multipart upload whose workload_id (${workloadId === 'other' ? "bob's" : 'none such'}) ` +
          'comes before the file, with 404 before reading the file',
        async () => {
          const size = 20 * MB;
          const id = workloadId === 'other' ? bobsWorkload : 'no-such-workload';
          const { answer, sent } = await pushMultipart(workloadPart(id), size, '');
          expect(answer).to.match(/^HTTP\/1\.1 404 [\s\S]*no workload with id/);
          expect(sent, 'bytes sent when the answer came').to.be.below(size / 2);
          expect(answer).to.match(/\r\nConnection: close\r\n/i);
          await nothingStaged();
        },
      );
    }

    it('still refuses one whose workload_id comes after the file, once it has it, and keeps nothing', async () => {
      const size = 4 * MB;
      const { answer, sent } = await pushMultipart('', size, workloadPart(bobsWorkload));
      expect(answer).to.match(/^HTTP\/1\.1 404 [\s\S]*no workload with id/);
      expect(sent).to.equal(size);
      await nothingStaged();
    });
  });
});
