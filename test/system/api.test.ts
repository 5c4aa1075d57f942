// The REST contract (DESIGN.md section 6) against a real server: api + controller + scheduler
// in this process, on loopback. No workers: uploaded originals simply stay queued.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import { Jimp } from 'jimp';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import type { Response } from 'supertest';
import { startServer, type Server } from '../../bin/server.js';
import { createLogger } from '../../common/log.js';
import { TestClient, type WorkloadBody } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { makeDirs, startTestServer, testServerConfig, type TestDirs } from '../helpers/system.js';

interface ErrorBody {
  error: { code: number; message: string };
}

interface LoginBody {
  user: string;
  token: string;
}

interface StatusBody {
  system_name: string;
  server_time: string;
  active_workloads: WorkloadBody[];
}

interface UploadBody {
  workload_id: string;
  image_id: string;
  type: string;
}

interface WorkloadWithTags extends WorkloadBody {
  tags: string[];
}

/** Asserts the contract's error shape: JSON {error: {code, message}} with the status as code. */
type Answer = Pick<Response, 'status' | 'text' | 'headers' | 'body'>;

function expectError(res: Answer, status: number, message?: RegExp): ErrorBody {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers['content-type']).to.match(/^application\/json/);
  const body = res.body as ErrorBody;
  expect(body).to.have.property('error');
  expect(body.error.code).to.equal(status);
  expect(body.error.message).to.be.a('string').and.not.equal('');
  if (message) expect(body.error.message).to.match(message);
  return body;
}

/** The fields every workload response carries, and their values for a fresh workload. */
function expectFreshWorkload(body: WorkloadBody, filter: string, name?: string): void {
  expect(body.workload_id).to.match(/^[0-9a-f-]{36}$/);
  expect(body.filter).to.equal(filter);
  if (name !== undefined) expect(body.workload_name).to.equal(name);
  else
    expect(body.workload_name)
      .to.be.a('string')
      .and.match(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);
  expect(body.status).to.equal('scheduling');
  expect(body.running_jobs).to.equal(0);
  expect(body.filtered_images).to.deep.equal([]);
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function bearer(token: string): string {
  return `Bearer ${token}`;
}

let nameCounter = 0;
/** A workload name no other test uses (names are unique across all users). */
function uniqueName(prefix = 'w'): string {
  nameCounter += 1;
  return `${prefix}-${nameCounter}-${randomBytes(3).toString('hex')}`;
}

/** Keeps a binary response body as a Buffer whatever its content type. */
function binary(res: Response, callback: (error: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
  res.on('error', (error: Error) => callback(error, Buffer.alloc(0)));
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A tiny PNG whose IHDR (with a correct CRC) claims width x height; no pixel data follows. */
function pngClaiming(width: number, height: number): Buffer {
  const type = Buffer.from('IHDR', 'ascii');
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bit depth
  data[9] = 2; // colour type: RGB
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, data])));
  return Buffer.concat([PNG_SIGNATURE, length, type, data, crc, Buffer.from([0, 0, 0, 0, 0x49, 0x44, 0x41, 0x54])]);
}

/** An unsigned JWT (`alg: none`) with otherwise valid claims. */
/**
 * POSTs `head` and then zeros up to `total` bytes as a chunked body (no length declared), 64 KiB at
 * a time, as a client streaming an image would; resolves with the answer, which may come (and close
 * the connection) before the body is all written.
 */
function chunkedUpload(base: string, target: string, token: string, head: Buffer, total: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(target, base), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png', 'transfer-encoding': 'chunked' },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          text,
          headers: res.headers as Answer['headers'],
          body: JSON.parse(text) as unknown,
        }),
      );
    });
    req.on('error', reject);
    let sent = 0;
    const writeMore = (): void => {
      while (sent < total && !req.destroyed) {
        const chunk = sent === 0 ? head : Buffer.alloc(Math.min(64 * 1024, total - sent));
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', writeMore);
      }
      if (!req.destroyed) req.end();
    };
    writeMore();
  });
}

function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

describe('REST API on a real server', function () {
  this.timeout(20_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let aliceToken: string;
  let bobToken: string;
  let signingSecret: Buffer;

  const asAlice = () => ({ authorization: bearer(aliceToken) });
  const asBob = () => ({ authorization: bearer(bobToken) });

  async function createWorkload(token: string, body: Record<string, unknown> = {}): Promise<WorkloadWithTags> {
    const res = await request(url).post('/workloads').set('authorization', bearer(token)).send(body);
    expect(res.status, res.text).to.equal(201);
    return res.body as WorkloadWithTags;
  }

  async function getWorkload(token: string, id: string): Promise<WorkloadWithTags> {
    const res = await request(url).get(`/workloads/${id}`).set('authorization', bearer(token));
    expect(res.status, res.text).to.equal(200);
    return res.body as WorkloadWithTags;
  }

  before(async () => {
    dirs = await makeDirs();
    ({ server, url } = await startTestServer(dirs));
    aliceToken = (await TestClient.login(url, 'alice', 'alice-pw')).token;
    bobToken = (await TestClient.login(url, 'bob', 'bob-pass')).token;
    signingSecret = Buffer.from((await readFile(path.join(dirs.dataDir, 'jwt-secret'), 'utf8')).trim(), 'hex');
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  describe('POST /register', () => {
    const accepted: { title: string; send: (name: string) => request.Test }[] = [
      {
        title: 'JSON {username, password}',
        send: (name) => request(url).post('/register').send({ username: name, password: 'secret-pw' }),
      },
      {
        title: 'JSON {user, password}',
        send: (name) => request(url).post('/register').send({ user: name, password: 'secret-pw' }),
      },
      {
        title: 'a form {username, password}',
        send: (name) => request(url).post('/register').type('form').send({ username: name, password: 'secret-pw' }),
      },
      {
        title: 'a form {user, password}',
        send: (name) => request(url).post('/register').type('form').send({ user: name, password: 'secret-pw' }),
      },
    ];
    for (const [index, { title, send }] of accepted.entries()) {
      it(`registers a user from ${title}, who can then log in`, async () => {
        const name = `reg${index}-${randomBytes(3).toString('hex')}`;
        const res = await send(name);
        expect(res.status, res.text).to.equal(201);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        expect(res.body).to.deep.equal({ user: name });
        const login = await request(url).post('/login').set('authorization', basic(name, 'secret-pw'));
        expect(login.status, login.text).to.equal(200);
        expect((login.body as LoginBody).user).to.equal(name);
      });
    }

    it('accepts the shortest allowed password (8 characters) and a 64-character name', async () => {
      const name = `L${randomBytes(4).toString('hex')}`.padEnd(64, 'x');
      const res = await request(url).post('/register').send({ username: name, password: 'abcdefgh' });
      expect(res.status, res.text).to.equal(201);
    });

    it('refuses a 7-character password with 400 that names the minimum', async () => {
      expectError(
        await request(url).post('/register').send({ username: 'sevenpw', password: 'abcdefg' }),
        400,
        /at least 8 characters/,
      );
    });

    // Inherited object properties are not users: registering them must work like any other name.
    for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
      it(`registers a user named "${name}"`, async () => {
        const res = await request(url).post('/register').send({ username: name, password: 'proto-pw' });
        expect(res.status, res.text).to.equal(201);
        const login = await request(url).post('/login').send({ username: name, password: 'proto-pw' });
        expect(login.status, login.text).to.equal(200);
      });
    }

    it('refuses an existing user with 409, and leaves the password unchanged', async () => {
      const name = `dup-${randomBytes(3).toString('hex')}`;
      expect((await request(url).post('/register').send({ username: name, password: 'first-pw' })).status).to.equal(
        201,
      );
      expectError(
        await request(url).post('/register').send({ username: name, password: 'second-pw' }),
        409,
        /already exists/,
      );
      expect((await request(url).post('/login').send({ username: name, password: 'first-pw' })).status).to.equal(200);
      expectError(await request(url).post('/login').send({ username: name, password: 'second-pw' }), 401);
    });

    it('refuses a user from the configuration (alice) with 409', async () => {
      expectError(await request(url).post('/register').send({ username: 'alice', password: 'hijack-pw' }), 409);
      expect((await request(url).post('/login').set('authorization', basic('alice', 'alice-pw'))).status).to.equal(200);
    });

    const invalid: { title: string; body: Record<string, unknown> | string }[] = [
      { title: 'an empty username', body: { username: '', password: 'secret-pw' } },
      { title: 'a username with a slash', body: { username: 'a/b', password: 'secret-pw' } },
      { title: 'a path traversal username', body: { username: '../x', password: 'secret-pw' } },
      { title: 'a username with a space', body: { username: 'a b', password: 'secret-pw' } },
      { title: 'a username starting with "-"', body: { username: '-abc', password: 'secret-pw' } },
      { title: 'a username starting with "_"', body: { username: '__proto__', password: 'secret-pw' } },
      { title: 'a non-ASCII username', body: { username: 'zoë', password: 'secret-pw' } },
      { title: 'a 65-character username', body: { username: 'u'.repeat(65), password: 'secret-pw' } },
      { title: 'a 3-character password', body: { username: 'shortpw', password: 'abc' } },
      { title: 'a 4-character password', body: { username: 'fourpw', password: 'abcd' } },
      { title: 'an empty password', body: { username: 'emptypw', password: '' } },
      { title: 'a 1025-character password', body: { username: 'longpw', password: 'p'.repeat(1025) } },
      { title: 'a missing password', body: { username: 'nopw' } },
      { title: 'a numeric password', body: { username: 'numpw', password: 12345678 } },
      { title: 'no body at all', body: '' },
    ];
    for (const { title, body } of invalid) {
      it(`refuses ${title} with 400`, async () => {
        const req = request(url).post('/register');
        const res = body === '' ? await req : await req.send(body);
        expectError(res, 400);
      });
    }

    it('created nobody for the refused requests', async () => {
      for (const name of ['shortpw', 'emptypw', 'longpw', 'nopw', 'numpw']) {
        expectError(await request(url).post('/login').send({ username: name, password: 'abc' }), 401);
      }
      for (const [name, password] of [
        ['fourpw', 'abcd'],
        ['sevenpw', 'abcdefg'],
      ]) {
        expectError(await request(url).post('/login').send({ username: name, password }), 401);
      }
    });
  });

  describe('the minimum password length (--min-password-length)', () => {
    let ownDirs: TestDirs;

    beforeEach(async () => {
      ownDirs = await makeDirs();
    });

    afterEach(async () => {
      await ownDirs?.remove();
    });

    it('is enforced at registration with the configured length', async () => {
      const config = await testServerConfig(ownDirs);
      config.api.minPasswordLength = 12;
      config.users = {};
      const strict = await startServer(config, createLogger('x', 'silent'));
      try {
        const strictUrl = `http://127.0.0.1:${strict.api.port}`;
        expectError(
          await request(strictUrl).post('/register').send({ username: 'eleven', password: 'abcdefghijk' }),
          400,
          /at least 12 characters/,
        );
        const res = await request(strictUrl).post('/register').send({ username: 'twelve', password: 'abcdefghijkl' });
        expect(res.status, res.text).to.equal(201);
      } finally {
        await strict.close();
      }
    });

    it('lets an existing user with a shorter password log in; --users creates no new one with it', async () => {
      // a user made when 4 characters were enough
      const config = await testServerConfig(ownDirs);
      config.api.minPasswordLength = 4;
      config.users = { ...config.users, olduser: 'abcd' };
      await (await startServer(config, createLogger('x', 'silent'))).close();

      const again = await testServerConfig(ownDirs);
      again.users = { ...again.users, olduser: 'abcd' };
      const restarted = await startServer(again, createLogger('x', 'silent'));
      try {
        const login = await request(`http://127.0.0.1:${restarted.api.port}`)
          .post('/login')
          .send({ username: 'olduser', password: 'abcd' });
        expect(login.status, login.text).to.equal(200);
      } finally {
        await restarted.close();
      }

      const fresh = await testServerConfig(ownDirs);
      fresh.users = { ...fresh.users, newuser: 'abcdefg' };
      let refused: unknown;
      await startServer(fresh, createLogger('x', 'silent')).then(
        (started) => started.close(),
        (error: unknown) => {
          refused = error;
        },
      );
      expect(String(refused)).to.match(/"newuser".*at least 8 characters/);
    });
  });

  describe('POST /register when registration is disabled', () => {
    let closedDirs: TestDirs;
    let closed: Server;
    let closedUrl: string;

    before(async () => {
      closedDirs = await makeDirs();
      const config = await testServerConfig(closedDirs);
      config.api.registrationOpen = false;
      closed = await startServer(config, createLogger('x', 'silent'));
      closedUrl = `http://127.0.0.1:${closed.api.port}`;
    });

    after(async () => {
      await closed?.close();
      await closedDirs?.remove();
    });

    it('refuses a well-formed registration with 403 and creates nobody', async () => {
      expectError(
        await request(closedUrl).post('/register').send({ username: 'mallory', password: 'mallory-pw' }),
        403,
        /disabled/,
      );
      expectError(
        await request(closedUrl).post('/register').type('form').send({ user: 'mallory', password: 'mallory-pw' }),
        403,
      );
      expectError(await request(closedUrl).post('/login').send({ username: 'mallory', password: 'mallory-pw' }), 401);
    });

    it('still lets configured users log in', async () => {
      const res = await request(closedUrl).post('/login').set('authorization', basic('alice', 'alice-pw'));
      expect(res.status, res.text).to.equal(200);
      expect((res.body as LoginBody).user).to.equal('alice');
    });
  });

  describe('/login', () => {
    const ways: { title: string; send: () => request.Test }[] = [
      {
        title: 'POST with HTTP Basic',
        send: () => request(url).post('/login').set('authorization', basic('alice', 'alice-pw')),
      },
      {
        title: 'GET with HTTP Basic',
        send: () => request(url).get('/login').set('authorization', basic('alice', 'alice-pw')),
      },
      {
        title: 'POST JSON {username, password}',
        send: () => request(url).post('/login').send({ username: 'alice', password: 'alice-pw' }),
      },
      {
        title: 'POST JSON {user, password}',
        send: () => request(url).post('/login').send({ user: 'alice', password: 'alice-pw' }),
      },
      {
        title: 'POST form {username, password}',
        send: () => request(url).post('/login').type('form').send({ username: 'alice', password: 'alice-pw' }),
      },
      {
        title: 'POST form {user, password}',
        send: () => request(url).post('/login').type('form').send({ user: 'alice', password: 'alice-pw' }),
      },
      {
        title: 'POST multipart fields {username, password}',
        send: () => request(url).post('/login').field('username', 'alice').field('password', 'alice-pw'),
      },
    ];
    for (const { title, send } of ways) {
      it(`${title} returns {user, token} and the token works`, async () => {
        const res = await send();
        expect(res.status, res.text).to.equal(200);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        const body = res.body as LoginBody;
        expect(Object.keys(body).sort()).to.deep.equal(['token', 'user']);
        expect(body.user).to.equal('alice');
        expect(body.token)
          .to.be.a('string')
          .and.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
        const status = await request(url).get('/status').set('authorization', bearer(body.token));
        expect(status.status, status.text).to.equal(200);
      });
    }

    it('a password with a colon works over HTTP Basic', async () => {
      const name = `colon-${randomBytes(3).toString('hex')}`;
      expect((await request(url).post('/register').send({ username: name, password: 'pa:ss:word' })).status).to.equal(
        201,
      );
      const res = await request(url).post('/login').set('authorization', basic(name, 'pa:ss:word'));
      expect(res.status, res.text).to.equal(200);
    });

    it('gives the same 401 message for a wrong password and an unknown user', async () => {
      const wrongPassword = expectError(
        await request(url).post('/login').set('authorization', basic('alice', 'bob-pass')),
        401,
      );
      const unknownUser = expectError(
        await request(url).post('/login').set('authorization', basic('nobody-here', 'alice-pw')),
        401,
      );
      const wrongJson = expectError(
        await request(url).post('/login').send({ username: 'alice', password: 'nope' }),
        401,
      );
      expect(unknownUser.error.message).to.equal(wrongPassword.error.message);
      expect(wrongJson.error.message).to.equal(wrongPassword.error.message);
    });

    const missing: { title: string; send: () => request.Test }[] = [
      { title: 'POST with nothing', send: () => request(url).post('/login') },
      { title: 'GET with nothing', send: () => request(url).get('/login') },
      { title: 'JSON without a password', send: () => request(url).post('/login').send({ username: 'alice' }) },
      {
        title: 'JSON with a numeric password',
        send: () => request(url).post('/login').send({ username: 'alice', password: 1234 }),
      },
      {
        title: 'Basic without a colon',
        send: () =>
          request(url)
            .post('/login')
            .set('authorization', `Basic ${Buffer.from('alice').toString('base64')}`),
      },
      {
        title: 'a Bearer header instead of credentials',
        send: () => request(url).post('/login').set('authorization', bearer(aliceToken)),
      },
    ];
    for (const { title, send } of missing) {
      it(`refuses ${title} with 401`, async () => {
        expectError(await send(), 401);
      });
    }
  });

  describe('DELETE /logout', () => {
    it('returns {logout_message} and revokes only that token', async () => {
      const first = (await TestClient.login(url, 'alice', 'alice-pw')).token;
      const second = (await TestClient.login(url, 'alice', 'alice-pw')).token;
      expect(first).to.not.equal(second);
      const res = await request(url).delete('/logout').set('authorization', bearer(first));
      expect(res.status, res.text).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expect(res.body).to.have.property('logout_message').that.is.a('string').and.not.equal('');
      expectError(await request(url).get('/status').set('authorization', bearer(first)), 401);
      expectError(await request(url).post('/workloads').set('authorization', bearer(first)), 401);
      expectError(await request(url).delete('/logout').set('authorization', bearer(first)), 401);
      const other = await request(url).get('/status').set('authorization', bearer(second));
      expect(other.status, other.text).to.equal(200);
    });

    it('refuses a request without a token with 401', async () => {
      expectError(await request(url).delete('/logout'), 401);
    });

    it('is DELETE only: POST /logout is not a route', async () => {
      expectError(await request(url).post('/logout').set(asAlice()), 404);
    });
  });

  describe('tokens', () => {
    const claims = () => ({ sub: 'alice', scope: 'user', jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 600 });

    it('a token forged with the server secret is accepted (the check the other cases rely on)', async () => {
      const token = jwt.sign(claims(), signingSecret, { algorithm: 'HS256' });
      const res = await request(url).get('/status').set('authorization', bearer(token));
      expect(res.status, res.text).to.equal(200);
    });

    const refused: { title: string; header: () => string | undefined }[] = [
      { title: 'no Authorization header', header: () => undefined },
      { title: '"Bearer" alone', header: () => 'Bearer' },
      { title: '"Bearer " with only spaces', header: () => 'Bearer    ' },
      { title: '"Token <token>"', header: () => `Token ${aliceToken}` },
      { title: 'the bare token without a scheme', header: () => aliceToken },
      { title: 'HTTP Basic credentials', header: () => basic('alice', 'alice-pw') },
      { title: 'two tokens', header: () => `Bearer ${aliceToken} ${aliceToken}` },
      { title: 'garbage', header: () => 'Bearer not-a-jwt' },
      {
        title: 'a token signed with another secret',
        header: () => bearer(jwt.sign(claims(), 'another-secret', { algorithm: 'HS256' })),
      },
      { title: 'an alg:none token', header: () => bearer(unsignedToken(claims())) },
      {
        title: 'a token signed with HS512 and the server secret',
        header: () => bearer(jwt.sign(claims(), signingSecret, { algorithm: 'HS512' })),
      },
      {
        title: 'an expired token',
        header: () =>
          bearer(
            jwt.sign({ ...claims(), exp: Math.floor(Date.now() / 1000) - 60 }, signingSecret, { algorithm: 'HS256' }),
          ),
      },
      {
        title: 'a token without a scope',
        header: () =>
          bearer(
            jwt.sign({ sub: 'alice', jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 600 }, signingSecret, {
              algorithm: 'HS256',
            }),
          ),
      },
      {
        title: 'a token with an unknown scope',
        header: () => bearer(jwt.sign({ ...claims(), scope: 'admin' }, signingSecret, { algorithm: 'HS256' })),
      },
      {
        title: 'a token with a tampered payload',
        header: () => {
          const [head, , signature] = aliceToken.split('.');
          const payload = Buffer.from(JSON.stringify({ ...claims(), sub: 'bob' })).toString('base64url');
          return bearer(`${head}.${payload}.${signature}`);
        },
      },
    ];
    for (const { title, header } of refused) {
      it(`refuses ${title} with 401 JSON`, async () => {
        const value = header();
        const req = request(url).get('/status');
        expectError(value === undefined ? await req : await req.set('authorization', value), 401);
      });
    }

    it('accepts the scheme in any case ("bearer")', async () => {
      const res = await request(url).get('/status').set('authorization', `bearer ${aliceToken}`);
      expect(res.status, res.text).to.equal(200);
    });
  });

  describe('GET /status', () => {
    it("returns the system name, the server time and only the caller's active workloads", async () => {
      const mine = await createWorkload(aliceToken, { workload_name: uniqueName('status-alice') });
      const theirs = await createWorkload(bobToken, { workload_name: uniqueName('status-bob') });
      const before = Date.now();
      const res = await request(url).get('/status').set(asAlice());
      expect(res.status, res.text).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      const body = res.body as StatusBody;
      expect(body.system_name).to.equal('DPIP-test');
      const serverTime = Date.parse(body.server_time);
      expect(new Date(serverTime).toISOString()).to.equal(body.server_time);
      expect(Math.abs(serverTime - before)).to.be.below(5_000);
      expect(body.active_workloads).to.be.an('array');
      const ids = body.active_workloads.map((workload) => workload.workload_id);
      expect(ids).to.include(mine.workload_id);
      expect(ids).to.not.include(theirs.workload_id);
      const listed = body.active_workloads.find((workload) => workload.workload_id === mine.workload_id)!;
      expectFreshWorkload(listed, 'grayscale', mine.workload_name);

      const bobs = (await request(url).get('/status').set(asBob())).body as StatusBody;
      const bobIds = bobs.active_workloads.map((workload) => workload.workload_id);
      expect(bobIds).to.include(theirs.workload_id);
      expect(bobIds).to.not.include(mine.workload_id);
    });

    it('lists nothing for a user without workloads', async () => {
      const name = `empty-${randomBytes(3).toString('hex')}`;
      expect((await request(url).post('/register').send({ username: name, password: 'empty-pw' })).status).to.equal(
        201,
      );
      const token = (await TestClient.login(url, name, 'empty-pw')).token;
      const res = await request(url).get('/status').set('authorization', bearer(token));
      expect(res.status, res.text).to.equal(200);
      expect((res.body as StatusBody).active_workloads).to.deep.equal([]);
    });
  });

  describe('POST /workloads', () => {
    it('an empty body (no content type at all) gives grayscale and a generated name', async () => {
      // fetch with no body sends neither a content type nor a body
      const response = await fetch(`${url}/workloads`, { method: 'POST', headers: asAlice() });
      expect(response.status, await response.clone().text()).to.equal(201);
      expect(response.headers.get('content-type')).to.match(/^application\/json/);
      const body = (await response.json()) as WorkloadBody;
      expectFreshWorkload(body, 'grayscale');
      expect(body.workload_name).to.match(/^workload-/);
    });

    it('two empty requests get two different generated names', async () => {
      const first = (await request(url).post('/workloads').set(asAlice())).body as WorkloadBody;
      const second = (await request(url).post('/workloads').set(asAlice())).body as WorkloadBody;
      expect(first.workload_name).to.be.a('string');
      expect(first.workload_name).to.not.equal(second.workload_name);
      expect(first.workload_id).to.not.equal(second.workload_id);
    });

    const bodies: { title: string; filter: string; send: (name: string) => request.Test }[] = [
      {
        title: 'a JSON body',
        filter: 'blur',
        send: (name) => request(url).post('/workloads').set(asAlice()).send({ filter: 'blur', workload_name: name }),
      },
      {
        title: 'a JSON body without a filter',
        filter: 'grayscale',
        send: (name) => request(url).post('/workloads').set(asAlice()).send({ workload_name: name }),
      },
      {
        title: 'a urlencoded form',
        filter: 'blur',
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).type('form').send({ filter: 'blur', workload_name: name }),
      },
      {
        title: 'multipart form fields',
        filter: 'blur',
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).field('filter', 'blur').field('workload_name', name),
      },
      {
        title: 'multipart form fields with grayscale',
        filter: 'grayscale',
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).field('filter', 'grayscale').field('workload_name', name),
      },
    ];
    for (const { title, filter, send } of bodies) {
      it(`accepts ${title} (filter ${filter})`, async () => {
        const name = uniqueName('body');
        const res = await send(name);
        expect(res.status, res.text).to.equal(201);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        expectFreshWorkload(res.body as WorkloadBody, filter, name);
      });
    }

    it('an empty workload_name gets a generated name', async () => {
      const res = await request(url).post('/workloads').set(asAlice()).send({ workload_name: '', filter: 'blur' });
      expect(res.status, res.text).to.equal(201);
      expectFreshWorkload(res.body as WorkloadBody, 'blur');
    });

    for (const filter of ['sepia', 'Grayscale', 'constructor', '__proto__', 'toString', ' blur']) {
      it(`refuses the unknown filter ${JSON.stringify(filter)} with 422`, async () => {
        expectError(await request(url).post('/workloads').set(asAlice()).send({ filter }), 422, /grayscale/);
      });
    }

    it('refuses an unknown filter from a form with 422', async () => {
      expectError(await request(url).post('/workloads').set(asAlice()).type('form').send({ filter: 'sepia' }), 422);
    });

    for (const [title, body] of [
      ['a numeric filter', { filter: 5 }],
      ['a filter list', { filter: ['blur'] }],
      ['a numeric workload_name', { workload_name: 123 }],
      ['an object workload_name', { workload_name: { x: 1 } }],
    ] as const) {
      it(`refuses ${title} with 400`, async () => {
        expectError(await request(url).post('/workloads').set(asAlice()).send(body), 400);
      });
    }

    const badNames: string[] = [
      '../x',
      'a/b',
      'a\\b',
      '.',
      '..',
      '.hidden',
      'a\u0000b',
      'n'.repeat(65),
      'café',
      '日本語',
      'a b',
      '-lead',
      '_lead',
      'x/../../etc',
      'a:b',
      'a*b',
    ];
    for (const name of badNames) {
      it(
        'refuses the workload name ' +
          `${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}...(${name.length})` : name)} with 400`,
        async () => {
          expectError(
            await request(url).post('/workloads').set(asAlice()).send({ workload_name: name }),
            400,
            /workload_name/,
          );
        },
      );
    }

    it('refuses a path traversal name from a form and from multipart fields with 400', async () => {
      expectError(
        await request(url).post('/workloads').set(asAlice()).type('form').send({ workload_name: '../x' }),
        400,
      );
      expectError(await request(url).post('/workloads').set(asAlice()).field('workload_name', '../../x'), 400);
    });

    it('accepts a 64-character name', async () => {
      const name = uniqueName('long').padEnd(64, 'z');
      const res = await request(url).post('/workloads').set(asAlice()).send({ workload_name: name });
      expect(res.status, res.text).to.equal(201);
      expectFreshWorkload(res.body as WorkloadBody, 'grayscale', name);
    });

    it('created no directory and no workload for the refused names', async () => {
      const entries = await readdir(dirs.imagesDir).catch(() => [] as string[]);
      for (const entry of entries) expect(badNames).to.not.include(entry);
      const status = (await request(url).get('/status').set(asAlice())).body as StatusBody;
      for (const workload of status.active_workloads) expect(badNames).to.not.include(workload.workload_name);
    });

    it('refuses a duplicate name with 409, also in another case and from another user', async () => {
      const name = uniqueName('Dup');
      await createWorkload(aliceToken, { workload_name: name });
      expectError(
        await request(url).post('/workloads').set(asAlice()).send({ workload_name: name }),
        409,
        /already exists/,
      );
      expectError(
        await request(url).post('/workloads').set(asAlice()).send({ workload_name: name.toLowerCase() }),
        409,
      );
      expectError(await request(url).post('/workloads').set(asBob()).send({ workload_name: name }), 409);
    });

    const tagCases: { title: string; send: (name: string) => request.Test; tags: string[] }[] = [
      {
        title: 'a JSON list',
        tags: ['gpu', 'fast'],
        send: (name) =>
          request(url)
            .post('/workloads')
            .set(asAlice())
            .send({ workload_name: name, tags: ['gpu', 'fast'] }),
      },
      {
        title: 'a comma-separated string',
        tags: ['gpu', 'fast'],
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).send({ workload_name: name, tags: 'gpu, fast,,gpu' }),
      },
      {
        title: 'a comma-separated form field',
        tags: ['gpu', 'x.y-z_1'],
        send: (name) =>
          request(url)
            .post('/workloads')
            .set(asAlice())
            .type('form')
            .send({ workload_name: name, tags: 'gpu,x.y-z_1' }),
      },
      {
        title: 'a repeated form field',
        tags: ['a', 'b'],
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).type('form').send(`workload_name=${name}&tags=a&tags=b`),
      },
      {
        title: 'a multipart field',
        tags: ['gpu'],
        send: (name) =>
          request(url).post('/workloads').set(asAlice()).field('workload_name', name).field('tags', 'gpu'),
      },
      {
        title: 'nothing',
        tags: [],
        send: (name) => request(url).post('/workloads').set(asAlice()).send({ workload_name: name }),
      },
    ];
    for (const { title, tags, send } of tagCases) {
      it(`takes tags as ${title}`, async () => {
        const name = uniqueName('tags');
        const res = await send(name);
        expect(res.status, res.text).to.equal(201);
        expect((res.body as WorkloadWithTags).tags).to.deep.equal(tags);
        const read = await getWorkload(aliceToken, (res.body as WorkloadBody).workload_id);
        expect(read.tags).to.deep.equal(tags);
      });
    }

    for (const [title, tags] of [
      ['a tag with a space', ['bad tag']],
      ['a tag with a slash', 'a/b'],
      ['a numeric tag list', [1, 2]],
      ['a number', 7],
      ['33 tags', Array.from({ length: 33 }, (_, index) => `t${index}`)],
    ] as const) {
      it(`refuses ${title} with 400`, async () => {
        expectError(await request(url).post('/workloads').set(asAlice()).send({ tags }), 400, /tags/);
      });
    }

    it('refuses a multipart body carrying a file with 400', async () => {
      const res = await request(url)
        .post('/workloads')
        .set(asAlice())
        .field('filter', 'blur')
        .attach('data', Buffer.from('x'), 'x.png');
      expectError(res, 400, /fields only/);
    });
  });

  describe('GET /workloads/:id', () => {
    let workload: WorkloadWithTags;

    before(async () => {
      workload = await createWorkload(aliceToken, { workload_name: uniqueName('get'), filter: 'blur', tags: ['t1'] });
    });

    it("returns the owner's workload with the same fields as its creation", async () => {
      const res = await request(url).get(`/workloads/${workload.workload_id}`).set(asAlice());
      expect(res.status, res.text).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      const body = res.body as WorkloadWithTags;
      expectFreshWorkload(body, 'blur', workload.workload_name);
      expect(body.workload_id).to.equal(workload.workload_id);
      expect(body.tags).to.deep.equal(['t1']);
      expect(body.total_images).to.equal(0);
    });

    it("gives 404 for another user's workload, with the same message as for a missing one", async () => {
      const theirs = expectError(await request(url).get(`/workloads/${workload.workload_id}`).set(asBob()), 404);
      const missing = expectError(await request(url).get(`/workloads/${randomUUID()}`).set(asBob()), 404);
      const withoutId = (message: string) => message.replace(/"[^"]*"/, '"ID"');
      expect(withoutId(theirs.error.message)).to.equal(withoutId(missing.error.message));
    });

    for (const id of [
      randomUUID(),
      '..%2F..',
      '..%2F..%2Fetc%2Fpasswd',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      '%00',
      'x'.repeat(300),
    ]) {
      it(`gives 404 for the unknown id ${JSON.stringify(id.length > 40 ? `${id.slice(0, 8)}...` : id)}`, async () => {
        expectError(await request(url).get(`/workloads/${id}`).set(asAlice()), 404);
      });
    }

    it('needs a token', async () => {
      expectError(await request(url).get(`/workloads/${workload.workload_id}`), 401);
    });
  });

  describe('POST /images', () => {
    let workload: WorkloadWithTags;
    let png: Buffer;
    let jpeg: Buffer;

    before(async () => {
      workload = await createWorkload(aliceToken, { workload_name: uniqueName('img') });
      png = await makeTestImage(40, 30, 'image/png', 7);
      jpeg = await makeTestImage(48, 32, 'image/jpeg', 8);
    });

    async function totalImages(): Promise<number> {
      return (await getWorkload(aliceToken, workload.workload_id)).total_images;
    }

    async function filesOnDisk(): Promise<string[]> {
      return readdir(path.join(dirs.imagesDir, workload.workload_name)).catch(() => []);
    }

    const accepted: { title: string; send: (workloadId: string) => request.Test }[] = [
      {
        title: 'a PNG in field "data"',
        send: (id) =>
          request(url)
            .post('/images')
            .set(asAlice())
            .field('workload_id', id)
            .field('type', 'original')
            .attach('data', png, { filename: 'a.png', contentType: 'image/png' }),
      },
      {
        title: 'a JPEG in field "data"',
        send: (id) =>
          request(url)
            .post('/images')
            .set(asAlice())
            .field('workload_id', id)
            .attach('data', jpeg, { filename: 'a.jpg', contentType: 'image/jpeg' }),
      },
      {
        title: 'a PNG in field "file"',
        send: (id) =>
          request(url)
            .post('/images')
            .set(asAlice())
            .field('workload_id', id)
            .attach('file', png, { filename: 'b.png', contentType: 'image/png' }),
      },
      {
        title: 'a PNG with the fields after the file',
        send: (id) =>
          request(url)
            .post('/images')
            .set(asAlice())
            .attach('image', png, { filename: 'c.png', contentType: 'image/png' })
            .field('workload_id', id),
      },
      {
        title: 'a PNG named .jpg and sent as octet-stream (the bytes decide)',
        send: (id) =>
          request(url)
            .post('/images')
            .set(asAlice())
            .field('workload_id', id)
            .attach('data', png, { filename: 'wrong.jpg', contentType: 'application/octet-stream' }),
      },
      {
        title: 'a PNG as the whole body, workload_id in the query string',
        send: (id) =>
          request(url).post(`/images?workload_id=${id}`).set(asAlice()).set('content-type', 'image/png').send(png),
      },
      {
        title: 'a JPEG as the whole body, sent as octet-stream, with type=original',
        send: (id) =>
          request(url)
            .post(`/images?type=original&workload_id=${id}`)
            .set(asAlice())
            .set('content-type', 'application/octet-stream')
            .send(jpeg),
      },
      {
        title: 'a PNG as the whole body labelled image/jpeg (the bytes decide)',
        send: (id) =>
          request(url).post(`/images/?workload_id=${id}`).set(asAlice()).set('content-type', 'image/jpeg').send(png),
      },
    ];
    for (const { title, send } of accepted) {
      it(`accepts ${title}: 201 {workload_id, image_id, type: "original"}`, async () => {
        const before = await totalImages();
        const res = await send(workload.workload_id);
        expect(res.status, res.text).to.equal(201);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        const body = res.body as UploadBody;
        expect(body.workload_id).to.equal(workload.workload_id);
        expect(body.image_id).to.match(/^[0-9a-f-]{36}$/);
        expect(body.type).to.equal('original');
        expect(await totalImages()).to.equal(before + 1);
        const read = await getWorkload(aliceToken, workload.workload_id);
        expect(read.status).to.equal('scheduling');
        expect(read.filtered_images).to.deep.equal([]);
      });
    }

    it('keeps an image sent as the whole body byte for byte, with the type its bytes have', async () => {
      const res = await request(url)
        .post(`/images?workload_id=${workload.workload_id}`)
        .set(asAlice())
        .set('content-type', 'application/octet-stream')
        .send(jpeg);
      expect(res.status, res.text).to.equal(201);
      const download = await request(url)
        .get(`/images/${(res.body as UploadBody).image_id}`)
        .set(asAlice())
        .buffer(true)
        .parse(binary);
      expect(download.status).to.equal(200);
      expect(download.headers['content-type']).to.equal('image/jpeg');
      expect(Buffer.compare(download.body as Buffer, jpeg)).to.equal(0);
    });

    it('accepts a file of exactly maxUploadBytes, in multipart and as the whole body', async () => {
      const exact = Buffer.concat([png, Buffer.alloc(5 * 1024 * 1024 - png.length)]);
      const raw = await request(url)
        .post(`/images?workload_id=${workload.workload_id}`)
        .set(asAlice())
        .set('content-type', 'image/png')
        .send(exact);
      expect(raw.status, raw.text).to.equal(201);
      const res = await request(url)
        .post('/images')
        .set(asAlice())
        .field('workload_id', workload.workload_id)
        .attach('data', exact, 'exact.png');
      expect(res.status, res.text).to.equal(201);
    });

    describe('refused uploads leave the workload unchanged', () => {
      let gif: Buffer;
      let bmp: Buffer;
      let tiff: Buffer;

      before(async () => {
        const image = new Jimp({ width: 8, height: 8, color: 0xff0000ff });
        gif = await image.getBuffer('image/gif');
        bmp = await image.getBuffer('image/bmp');
        tiff = await image.getBuffer('image/tiff');
      });

      const refused: {
        title: string;
        status: number;
        message?: RegExp;
        send: (workloadId: string) => PromiseLike<Answer>;
      }[] = [
        {
          title: 'two files',
          status: 400,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', png, 'a.png')
              .attach('data', png, 'b.png'),
        },
        {
          title: 'two files in different fields',
          status: 400,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', png, 'a.png')
              .attach('other', jpeg, 'b.jpg'),
        },
        {
          title: 'no file',
          status: 400,
          message: /no file/,
          send: (id) => request(url).post('/images').set(asAlice()).field('workload_id', id),
        },
        {
          title: 'a JSON body instead of multipart',
          status: 400,
          send: (id) => request(url).post('/images').set(asAlice()).send({ workload_id: id }),
        },
        { title: 'no body at all', status: 400, send: () => request(url).post('/images').set(asAlice()) },
        {
          title: 'an empty file',
          status: 400,
          message: /empty/,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', Buffer.alloc(0), 'empty.png'),
        },
        {
          title: 'text bytes named x.png',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', Buffer.from('this is plainly not an image, just some text\n'.repeat(20)), {
                filename: 'x.png',
                contentType: 'image/png',
              }),
        },
        {
          title: 'random bytes named x.jpg',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', Buffer.from(randomBytes(2048).map((byte) => (byte === 0xff ? 0 : byte))), {
                filename: 'x.jpg',
                contentType: 'image/jpeg',
              }),
        },
        {
          title: 'a GIF',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', gif, { filename: 'x.gif', contentType: 'image/gif' }),
        },
        {
          title: 'a GIF named x.png',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', gif, { filename: 'x.png', contentType: 'image/png' }),
        },
        {
          title: 'a BMP',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', bmp, { filename: 'x.bmp', contentType: 'image/bmp' }),
        },
        {
          title: 'a TIFF',
          status: 415,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', tiff, { filename: 'x.tiff', contentType: 'image/tiff' }),
        },
        {
          title: 'a file one byte over maxUploadBytes',
          status: 413,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', Buffer.concat([png, Buffer.alloc(5 * 1024 * 1024 + 1 - png.length)]), 'big.png'),
        },
        {
          title: 'a 6 MiB file',
          status: 413,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', Buffer.concat([png, Buffer.alloc(6 * 1024 * 1024)]), 'big.png'),
        },
        {
          title: 'a PNG header claiming 20000x20000',
          status: 422,
          message: /20000x20000/,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', pngClaiming(20_000, 20_000), 'huge.png'),
        },
        {
          title: 'a PNG header claiming 0x10',
          status: 422,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .attach('data', pngClaiming(0, 10), 'zero.png'),
        },
        {
          title: 'an unknown workload_id',
          status: 404,
          send: () =>
            request(url).post('/images').set(asAlice()).field('workload_id', randomUUID()).attach('data', png, 'a.png'),
        },
        {
          title: 'workload_id "__proto__"',
          status: 404,
          send: () =>
            request(url).post('/images').set(asAlice()).field('workload_id', '__proto__').attach('data', png, 'a.png'),
        },
        {
          title: "bob uploading into alice's workload",
          status: 404,
          send: (id) => request(url).post('/images').set(asBob()).field('workload_id', id).attach('data', png, 'a.png'),
        },
        {
          title: 'a user uploading type=filtered',
          status: 403,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .field('type', 'filtered')
              .attach('data', png, 'a.png'),
        },
        {
          title: 'an unknown type',
          status: 400,
          message: /type/,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .field('workload_id', id)
              .field('type', 'thumbnail')
              .attach('data', png, 'a.png'),
        },
        {
          title: 'a missing workload_id',
          status: 400,
          message: /workload_id/,
          send: () => request(url).post('/images').set(asAlice()).attach('data', png, 'a.png'),
        },
        {
          title: 'an empty workload_id',
          status: 400,
          message: /workload_id/,
          send: () => request(url).post('/images').set(asAlice()).field('workload_id', '').attach('data', png, 'a.png'),
        },
        {
          title: 'no token',
          status: 401,
          send: (id) => request(url).post('/images').field('workload_id', id).attach('data', png, 'a.png'),
        },
        {
          title: 'text bytes as the whole body labelled image/png',
          status: 415,
          send: (id) =>
            request(url)
              .post(`/images?workload_id=${id}`)
              .set(asAlice())
              .set('content-type', 'image/png')
              .send(Buffer.from('not an image\n'.repeat(50))),
        },
        {
          title: 'an image as the whole body without workload_id',
          status: 400,
          message: /workload_id/,
          send: () => request(url).post('/images').set(asAlice()).set('content-type', 'image/png').send(png),
        },
        {
          title: 'an image as the whole body, workload_id only in a header',
          status: 400,
          message: /workload_id/,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .set('workload-id', id)
              .set('content-type', 'image/png')
              .send(png),
        },
        {
          title: 'a user uploading type=filtered as the whole body',
          status: 403,
          send: (id) =>
            request(url)
              .post(`/images?workload_id=${id}&type=filtered`)
              .set(asAlice())
              .set('content-type', 'image/png')
              .send(png),
        },
        {
          title: 'an image as a text/plain body',
          status: 400,
          message: /multipart/,
          send: (id) =>
            request(url)
              .post(`/images?workload_id=${id}`)
              .set(asAlice())
              .set('content-type', 'text/plain')
              .send(png.toString('latin1')),
        },
        {
          title: 'an empty image/png body',
          status: 400,
          send: (id) =>
            request(url)
              .post(`/images?workload_id=${id}`)
              .set(asAlice())
              .set('content-type', 'image/png')
              .send(Buffer.alloc(0)),
        },
        {
          title: 'a whole-body image one byte over maxUploadBytes',
          status: 413,
          send: (id) =>
            request(url)
              .post(`/images?workload_id=${id}`)
              .set(asAlice())
              .set('content-type', 'image/png')
              .send(Buffer.concat([png, Buffer.alloc(5 * 1024 * 1024 + 1 - png.length)])),
        },
        {
          title: 'a chunked whole-body image over maxUploadBytes (no length declared)',
          status: 413,
          send: (id) => chunkedUpload(url, `/images?workload_id=${id}`, aliceToken, png, 6 * 1024 * 1024),
        },
        {
          title: 'a multipart content type without a boundary',
          status: 400,
          send: () =>
            request(url).post('/images').set(asAlice()).set('content-type', 'multipart/form-data').send('--x\r\n'),
        },
        {
          title: 'a truncated multipart body',
          status: 400,
          send: (id) =>
            request(url)
              .post('/images')
              .set(asAlice())
              .set('content-type', 'multipart/form-data; boundary=XyZ')
              .send(
                `--XyZ\r\nContent-Disposition: form-data; name="workload_id"\r\n\r\n${id}\r\n` +
                  '--XyZ\r\nContent-Disposition: form-data; name="data"; filename="a.png"\r\n' +
                  `Content-Type: image/png\r\n\r\n${png.subarray(0, 40).toString('latin1')}`,
              ),
        },
      ];
      for (const { title, status, message, send } of refused) {
        it(`refuses ${title} with ${status}`, async () => {
          const before = await totalImages();
          const filesBefore = await filesOnDisk();
          const started = Date.now();
          expectError(await send(workload.workload_id), status, message);
          expect(Date.now() - started, 'refused quickly').to.be.below(5_000);
          expect(await totalImages()).to.equal(before);
          expect((await filesOnDisk()).sort()).to.deep.equal(filesBefore.sort());
        });
      }

      it('left no staged upload behind', async () => {
        const staging = path.dirname(server.controller.images.stagingPath());
        expect(await readdir(staging).catch(() => [])).to.deep.equal([]);
      });
    });

    it('counts every accepted upload in total_images, and bob still cannot read the workload', async () => {
      const fresh = await createWorkload(aliceToken, { workload_name: uniqueName('count') });
      for (const data of [png, jpeg, png]) {
        const res = await request(url)
          .post('/images')
          .set(asAlice())
          .field('workload_id', fresh.workload_id)
          .attach('data', data, 'x');
        expect(res.status, res.text).to.equal(201);
      }
      expect((await getWorkload(aliceToken, fresh.workload_id)).total_images).to.equal(3);
      expectError(await request(url).get(`/workloads/${fresh.workload_id}`).set(asBob()), 404);
    });
  });

  describe('GET /images/:id', () => {
    let png: Buffer;
    let jpeg: Buffer;
    let pngId: string;
    let jpegId: string;

    before(async () => {
      const workload = await createWorkload(aliceToken, { workload_name: uniqueName('dl') });
      png = await makeTestImage(33, 21, 'image/png', 11);
      jpeg = await makeTestImage(35, 19, 'image/jpeg', 12);
      const client = new TestClient(url, aliceToken);
      const pngUpload = await client.upload(workload.workload_id, png, 'p.png', 'image/png');
      const jpegUpload = await client.upload(workload.workload_id, jpeg, 'j.jpg', 'image/jpeg');
      expect(pngUpload.status).to.equal(201);
      expect(jpegUpload.status).to.equal(201);
      pngId = pngUpload.body.image_id!;
      jpegId = jpegUpload.body.image_id!;
    });

    for (const kind of ['png', 'jpeg'] as const) {
      it(`returns the exact ${kind.toUpperCase()} bytes with content type image/${kind}`, async () => {
        const id = kind === 'png' ? pngId : jpegId;
        const res = await request(url).get(`/images/${id}`).set(asAlice()).buffer(true).parse(binary);
        expect(res.status).to.equal(200);
        expect(res.headers['content-type']).to.equal(`image/${kind}`);
        expect(Number(res.headers['content-length'])).to.equal((kind === 'png' ? png : jpeg).length);
        expect(Buffer.compare(res.body as Buffer, kind === 'png' ? png : jpeg)).to.equal(0);
      });
    }

    it(
      'matches its path as any route does: ' +
        'any case, a trailing slash, a query string; HEAD gives the headers only',
      async () => {
        for (const path of [`/images/${pngId}/`, `/IMAGES/${pngId}`, `/images/${pngId}?download=1`]) {
          const res = await request(url).get(path).set(asAlice()).buffer(true).parse(binary);
          expect(res.status, path).to.equal(200);
          expect(Buffer.compare(res.body as Buffer, png), path).to.equal(0);
          expect(res.headers['x-request-id'], path).to.be.a('string');
        }
        const head = await request(url).head(`/images/${pngId}`).set(asAlice());
        expect(head.status).to.equal(200);
        expect(Number(head.headers['content-length'])).to.equal(png.length);
        expect(head.headers['content-type']).to.equal('image/png');
        const other = await request(url).put(`/images/${pngId}`).set(asAlice());
        expect(other.status).to.equal(404);
        expect(other.body.error.message).to.match(/no route/);
      },
    );

    const bodies: { title: string; send: (req: request.Test) => request.Test }[] = [
      { title: 'a JSON body', send: (req) => req.send({ workload_id: 'whatever', type: 'filtered' }) },
      {
        title: 'invalid JSON text sent as application/json',
        send: (req) => req.set('content-type', 'application/json').send('{"this is": not json'),
      },
      { title: 'a form body', send: (req) => req.type('form').send('a=1&b=2') },
    ];
    for (const { title, send } of bodies) {
      it(`ignores ${title} on GET and still returns the bytes`, async () => {
        const res = await send(request(url).get(`/images/${pngId}`).set(asAlice()))
          .buffer(true)
          .parse(binary);
        expect(res.status, String(res.body)).to.equal(200);
        expect(res.headers['content-type']).to.equal('image/png');
        expect(Buffer.compare(res.body as Buffer, png)).to.equal(0);
      });
    }

    it('gives 404 to another user, like a missing image', async () => {
      expectError(await request(url).get(`/images/${pngId}`).set(asBob()), 404);
    });

    for (const id of [randomUUID(), '__proto__', 'constructor', '..%2F..', '..%2F..%2Fjwt-secret']) {
      it(`gives 404 for the unknown id ${JSON.stringify(id)}`, async () => {
        expectError(await request(url).get(`/images/${id}`).set(asAlice()), 404);
      });
    }

    it('needs a token', async () => {
      expectError(await request(url).get(`/images/${pngId}`), 401);
    });

    it("gives 404 JSON when the image's file is gone from disk, and a file of another size whole", async () => {
      const { images } = server.controller;
      const file = images.localPath(images.find('alice', jpegId))!;
      await unlink(file);
      expectError(await request(url).get(`/images/${jpegId}`).set(asAlice()), 404, /missing/);
      const larger = await makeTestImage(70, 40, 'image/jpeg', 13);
      await writeFile(file, larger);
      const res = await request(url).get(`/images/${jpegId}`).set(asAlice()).buffer(true).parse(binary);
      expect(Number(res.headers['content-length'])).to.equal(larger.length);
      expect(Buffer.compare(res.body as Buffer, larger)).to.equal(0);
    });
  });

  describe('errors in general', () => {
    for (const [method, route] of [
      ['get', '/index.htm'],
      ['get', '/nope'],
      ['post', '/nope'],
      ['delete', '/workloads'],
      ['put', '/images'],
      ['put', '/workloads/x'],
      ['delete', '/status'],
    ] as const) {
      it(`${method.toUpperCase()} ${route} is 404 JSON`, async () => {
        expectError(await request(url)[method](route).set(asAlice()), 404);
      });
    }

    it('a JSON body over 64 KiB to /workloads is 413 JSON', async () => {
      const before = (await request(url).get('/status').set(asAlice())).body as StatusBody;
      const body = JSON.stringify({ workload_name: uniqueName('huge'), padding: 'x'.repeat(70 * 1024) });
      expectError(
        await request(url).post('/workloads').set(asAlice()).set('content-type', 'application/json').send(body),
        413,
      );
      const after = (await request(url).get('/status').set(asAlice())).body as StatusBody;
      expect(after.active_workloads.length).to.equal(before.active_workloads.length);
    });

    it('a form body over 64 KiB to /workloads is 413 JSON', async () => {
      expectError(
        await request(url)
          .post('/workloads')
          .set(asAlice())
          .type('form')
          .send(`filter=blur&padding=${'x'.repeat(70 * 1024)}`),
        413,
      );
    });

    it('a JSON body over 64 KiB to /login is 413 JSON', async () => {
      expectError(
        await request(url)
          .post('/login')
          .set('content-type', 'application/json')
          .send(JSON.stringify({ username: 'alice', password: 'x'.repeat(70 * 1024) })),
        413,
      );
    });

    for (const route of ['/workloads', '/login', '/register']) {
      it(`invalid JSON to ${route} is 400 JSON`, async () => {
        const res = await request(url)
          .post(route)
          .set(asAlice())
          .set('content-type', 'application/json')
          .send('{"filter": "blur",');
        expectError(res, 400, /JSON/);
      });
    }

    it('a malformed percent-encoding in a path is 400 JSON', async () => {
      expectError(await request(url).get('/workloads/%E0%A4%A').set(asAlice()), 400);
    });

    it('a multipart body without a boundary to /workloads is 400 JSON', async () => {
      expectError(
        await request(url).post('/workloads').set(asAlice()).set('content-type', 'multipart/form-data').send('garbage'),
        400,
        /multipart/,
      );
    });

    it('a truncated multipart body to /workloads is 400 JSON', async () => {
      const body =
        '--XyZ\r\nContent-Disposition: form-data; name="filter"\r\n\r\nblur\r\n' +
        '--XyZ\r\nContent-Disposition: form-data; name="workload_na';
      expectError(
        await request(url)
          .post('/workloads')
          .set(asAlice())
          .set('content-type', 'multipart/form-data; boundary=XyZ')
          .send(body),
        400,
        /multipart/,
      );
    });

    it('never sends x-powered-by', async () => {
      const res = await request(url).get('/status').set(asAlice());
      expect(res.headers).to.not.have.property('x-powered-by');
    });
  });

  describe('worker tokens', () => {
    let workerToken: string;
    let imageId: string;
    let image: Buffer;
    let workload: WorkloadWithTags;

    before(async () => {
      workerToken = server.controller.tokens.issue('some-worker-id', 'worker').token;
      workload = await createWorkload(aliceToken, { workload_name: uniqueName('wk') });
      image = await makeTestImage(20, 20, 'image/png', 3);
      const upload = await new TestClient(url, aliceToken).upload(workload.workload_id, image, 'w.png', 'image/png');
      expect(upload.status).to.equal(201);
      imageId = upload.body.image_id!;
    });

    const forbidden: { title: string; send: () => request.Test }[] = [
      { title: 'GET /status', send: () => request(url).get('/status').set('authorization', bearer(workerToken)) },
      {
        title: 'POST /workloads',
        send: () => request(url).post('/workloads').set('authorization', bearer(workerToken)).send({ filter: 'blur' }),
      },
      {
        title: 'POST /workloads with an empty body',
        send: () => request(url).post('/workloads').set('authorization', bearer(workerToken)),
      },
      {
        title: 'GET /workloads/:id',
        send: () => request(url).get(`/workloads/${workload.workload_id}`).set('authorization', bearer(workerToken)),
      },
      { title: 'DELETE /logout', send: () => request(url).delete('/logout').set('authorization', bearer(workerToken)) },
      {
        title: 'POST /images of an original',
        send: () =>
          request(url)
            .post('/images')
            .set('authorization', bearer(workerToken))
            .field('workload_id', workload.workload_id)
            .attach('data', image, 'w.png'),
      },
      {
        title: 'POST /images of a filtered image without job_id and lease_id',
        send: () =>
          request(url)
            .post('/images')
            .set('authorization', bearer(workerToken))
            .field('type', 'filtered')
            .attach('data', image, 'w.png'),
      },
    ];
    for (const { title, send } of forbidden) {
      it(`are refused ${title} with 403`, async () => {
        expectError(await send(), 403);
      });
    }

    it('created nothing while refused', async () => {
      expect((await getWorkload(aliceToken, workload.workload_id)).total_images).to.equal(1);
    });

    it('may not download an original of a job it does not hold (404)', async () => {
      expectError(await request(url).get(`/images/${imageId}`).set('authorization', bearer(workerToken)), 404);
    });

    it('may download the original of a job it holds the lease on (what a worker does with its job)', async () => {
      const jobId = server.controller.store.data.images[imageId]!.job_id!;
      expect(server.controller.jobs.assign(jobId, 'some-worker-id').ok).to.equal(true);
      const other = server.controller.tokens.issue('another-worker-id', 'worker').token;
      expectError(await request(url).get(`/images/${imageId}`).set('authorization', bearer(other)), 404);
      const res = await request(url)
        .get(`/images/${imageId}`)
        .set('authorization', bearer(workerToken))
        .buffer(true)
        .parse(binary);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('image/png');
      expect(Buffer.compare(res.body as Buffer, image)).to.equal(0);
    });

    it('a worker token signed with another secret is 401, not 403', async () => {
      const forged = jwt.sign(
        { sub: 'some-worker-id', scope: 'worker', jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 600 },
        'not-the-secret',
      );
      expectError(await request(url).get(`/images/${imageId}`).set('authorization', bearer(forged)), 401);
    });
  });
});
