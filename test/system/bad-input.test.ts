// One table of hostile inputs against a real server (api + controller + scheduler in this process,
// real HTTP on loopback), for what test/api.test.ts does not already try: names and ids, uploads,
// credentials and tokens on every route. Every row checks the status and the JSON error, and that
// nothing changed: no user, workload, image or job was added and no file appeared under images/.
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Server } from '../../bin/server.js';
import { makeTestImage } from '../helpers/images.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';
import { call, type Reply } from '../helpers/raw-http.js';

interface Part {
  name: string;
  value: string | Buffer;
  filename?: string;
  type?: string;
}

/** A multipart body written by hand, so names and filenames go out exactly as given. */
function multipart(parts: Part[]): { body: Buffer; type: string } {
  const boundary = `----dpip${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.type) head += `Content-Type: ${part.type}\r\n`;
    chunks.push(
      Buffer.from(`${head}\r\n`, 'utf8'),
      Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value, 'utf8'),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A tiny PNG whose IHDR (with a correct CRC) claims width x height; no pixel data follows. */
function pngClaiming(width: number, height: number): Buffer {
  const type = Buffer.from('IHDR', 'ascii');
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width >>> 0, 0);
  data.writeUInt32BE(height >>> 0, 4);
  data[8] = 8;
  data[9] = 2;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, data])));
  return Buffer.concat([PNG_SIGNATURE, length, type, data, crc, Buffer.from([0, 0, 0, 0, 0x49, 0x44, 0x41, 0x54])]);
}

/** A tiny JPEG (SOI, JFIF APP0, SOF0, EOI) whose frame header claims width x height. */
function jpegClaiming(width: number, height: number): Buffer {
  const app0 = [
    0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  ];
  const sof0 = [
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ];
  return Buffer.from([0xff, 0xd8, ...app0, ...sof0, 0xff, 0xd9]);
}

/** An unsigned JWT (`alg: none`) with otherwise valid claims. */
function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

interface Row {
  group: 'names' | 'ids' | 'uploads' | 'credentials' | 'tokens';
  title: string;
  status: number;
  message?: RegExp;
  send: () => Promise<Reply>;
  /** A hostile input that is accepted (the upload's filename or field name is ignored): one image, where it belongs. */
  accepted?: 'one-image-in-its-workload';
  /** Refused from the header alone: the server's memory must not grow by the claimed bitmap. */
  memory?: true;
}

describe('bad input, table-driven', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let server: Server;
  let port: number;
  let aliceToken: string;
  let bobToken: string;
  let revokedToken: string;
  let workerToken: string;
  let signingSecret: Buffer;
  let png: Buffer;
  let aliceWorkload: { id: string; name: string };
  let bobWorkload: { id: string; name: string };
  let aliceImage: string;
  let tried = 0;

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const asAlice = () => bearer(aliceToken);
  const json = (body: unknown) => ({
    headers: { ...asAlice(), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const form = (body: string) => ({
    headers: { ...asAlice(), 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const parts = (list: Part[], headers: Record<string, string> = asAlice()) => {
    const { body, type } = multipart(list);
    return { headers: { ...headers, 'content-type': type }, body };
  };
  const createWorkload = (request: { headers: Record<string, string>; body: string | Buffer }) =>
    call(port, { method: 'POST', path: '/workloads', ...request });
  const upload = (list: Part[], headers?: Record<string, string>) =>
    call(port, { method: 'POST', path: '/images', ...parts(list, headers) });
  const uploadPng = (workloadId: string, extra: Part[] = []) =>
    upload([
      { name: 'workload_id', value: workloadId },
      ...extra,
      { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
    ]);
  const uploadFile = (value: Buffer, filename: string, type: string, workloadId = aliceWorkload.id) =>
    upload([
      { name: 'workload_id', value: workloadId },
      { name: 'data', value, filename, type },
    ]);
  const login = (headers: Record<string, string>, body?: string) =>
    call(port, { method: 'POST', path: '/login', headers, body });
  const claims = (extra: Record<string, unknown> = {}) => ({
    sub: 'alice',
    scope: 'user',
    jti: randomUUID(),
    exp: Math.floor(Date.now() / 1000) + 600,
    ...extra,
  });

  /** Collection sizes and every file under images/: what a refused request must not change. */
  async function snapshot(): Promise<{
    users: number;
    workloads: number;
    images: number;
    jobs: number;
    files: string[];
  }> {
    const data = server.controller.store.data;
    const files = await readdir(dirs.imagesDir, { recursive: true }).catch(() => [] as string[]);
    return {
      users: Object.keys(data.users).length,
      workloads: Object.keys(data.workloads).length,
      images: Object.keys(data.images).length,
      jobs: Object.keys(data.jobs).length,
      files: files.map(String).sort(),
    };
  }

  before(async () => {
    dirs = await makeDirs();
    ({ server } = await startTestServer(dirs));
    port = server.api.port;
    const loginAs = async (user: string, password: string) => {
      const reply = await login({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
      expect(reply.status, reply.text).to.equal(200);
      return String(reply.json.token);
    };
    aliceToken = await loginAs('alice', 'alice-pw');
    bobToken = await loginAs('bob', 'bob-pass');
    revokedToken = await loginAs('alice', 'alice-pw');
    expect((await call(port, { method: 'DELETE', path: '/logout', headers: bearer(revokedToken) })).status).to.equal(
      200,
    );
    workerToken = server.controller.tokens.issue('no-such-worker', 'worker').token;
    signingSecret = Buffer.from((await readFile(path.join(dirs.dataDir, 'jwt-secret'), 'utf8')).trim(), 'hex');
    png = await makeTestImage(24, 16, 'image/png', 5);
    const made = async (token: string, name: string) => {
      const reply = await call(port, {
        method: 'POST',
        path: '/workloads',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        body: JSON.stringify({ workload_name: name }),
      });
      expect(reply.status, reply.text).to.equal(201);
      return { id: String(reply.json.workload_id), name };
    };
    aliceWorkload = await made(aliceToken, `bad-alice-${randomBytes(3).toString('hex')}`);
    bobWorkload = await made(bobToken, `bad-bob-${randomBytes(3).toString('hex')}`);
    const uploaded = await uploadPng(aliceWorkload.id);
    expect(uploaded.status, uploaded.text).to.equal(201);
    aliceImage = String(uploaded.json.image_id);
  });

  after(async () => {
    // eslint-disable-next-line no-console
    console.log(`      bad inputs tried: ${tried}`);
    await server?.close();
    await dirs?.remove();
  });

  const nameRows = (): Row[] => {
    const bad = (
      title: string,
      status: number,
      request: () => { headers: Record<string, string>; body: string | Buffer },
      message: RegExp = /workload_name/,
    ): Row => ({
      group: 'names',
      title,
      status,
      message,
      send: () => createWorkload(request()),
    });
    return [
      bad('"name" (the alias) "../escape"', 400, () => json({ name: '../escape' })),
      bad('"name" "a/b" as a multipart field', 400, () => parts([{ name: 'name', value: 'a/b' }])),
      bad('".." from a form', 400, () => form('workload_name=..')),
      bad('"." as a multipart field', 400, () => parts([{ name: 'workload_name', value: '.' }])),
      bad('a NUL byte from a form (a%00b)', 400, () => form('workload_name=a%00b')),
      bad('a backslash as a multipart field', 400, () => parts([{ name: 'workload_name', value: 'a\\b' }])),
      bad('an absolute path "/etc"', 400, () => parts([{ name: 'workload_name', value: '/etc' }])),
      bad('a Windows traversal "..\\..\\windows"', 400, () => json({ workload_name: '..\\..\\windows' })),
      bad('a percent-encoded traversal "%2e%2e%2fx"', 400, () => json({ workload_name: '%2e%2e%2fx' })),
      bad('10000 characters', 400, () => json({ workload_name: 'n'.repeat(10_000) })),
      bad(
        '5000 characters as a multipart field (over the field size)',
        400,
        () => parts([{ name: 'workload_name', value: 'n'.repeat(5_000) }]),
        /multipart|too long/i,
      ),
      bad('a right-to-left override "abc\\u202Egnp"', 400, () => json({ workload_name: 'abc\u202Egnp' })),
      bad('a zero-width space', 400, () => json({ workload_name: 'a\u200Bb' })),
      bad('an emoji', 400, () => json({ workload_name: '\u{1F600}' })),
      bad('a fullwidth solidus "a\\uFF0Fb"', 400, () => json({ workload_name: 'a\uFF0Fb' })),
      bad('a combining accent', 400, () => json({ workload_name: 'e\u0301' })),
      bad('a newline', 400, () => json({ workload_name: 'a\nb' })),
      bad('a trailing space', 400, () => json({ workload_name: 'name ' })),
      bad('a trailing dot', 400, () => json({ workload_name: 'abc.' })),
      bad('a list', 400, () => json({ workload_name: ['a'] })),
      bad('a boolean', 400, () => json({ workload_name: true })),
      bad('a repeated form field', 400, () => form('workload_name=a1&workload_name=b1')),
      bad(
        'the name of an existing workload, through the "name" alias',
        409,
        () => json({ name: aliceWorkload.name }),
        /already exists/,
      ),
      bad(
        "another user's workload name in upper case, from a form",
        409,
        () => form(`workload_name=${bobWorkload.name.toUpperCase()}`),
        /already exists/,
      ),
      bad(
        'an existing name in mixed case, as a multipart field',
        409,
        () => parts([{ name: 'workload_name', value: aliceWorkload.name.replace(/^b/, 'B') }]),
        /already exists/,
      ),
    ];
  };

  const idRows = (): Row[] => {
    const get = (title: string, target: () => string, status = 404, message?: RegExp): Row => ({
      group: 'ids',
      title,
      status,
      message,
      send: () => call(port, { path: target(), headers: asAlice() }),
    });
    const uploadInto = (title: string, workloadId: () => string | string[], status: number, message?: RegExp): Row => ({
      group: 'ids',
      title: `upload into ${title}`,
      status,
      message,
      send: () => {
        const ids = workloadId();
        return upload([
          ...(Array.isArray(ids) ? ids : [ids]).map((value) => ({ name: 'workload_id', value })),
          { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
        ]);
      },
    });
    return [
      get('GET /workloads/..%2F..%2Fdata%2Fdb.json', () => '/workloads/..%2F..%2Fdata%2Fdb.json'),
      get('GET /images/..%2F..%2Fdata%2Fdb.json', () => '/images/..%2F..%2Fdata%2Fdb.json'),
      get('GET /images/%00', () => '/images/%00'),
      get('GET /images/%2e%2e (decodes to "..")', () => '/images/%2e%2e'),
      get('GET /images/..%5C..%5Cdata%5Cjwt-secret', () => '/images/..%5C..%5Cdata%5Cjwt-secret'),
      get('GET /images/<our image id>%2F..%2F..', () => `/images/${aliceImage}%2F..%2F..`),
      get('GET /images/<our image id in upper case>', () => `/images/${aliceImage.toUpperCase()}`),
      get('GET /images/<an 8000-character id>', () => `/images/${'i'.repeat(8_000)}`),
      get('GET /images/<a 20000-character id>', () => `/images/${'i'.repeat(20_000)}`, 431),
      get('GET /workloads/<a 20000-character id>', () => `/workloads/${'w'.repeat(20_000)}`, 431),
      get('GET /images/<a workload id>', () => `/images/${aliceWorkload.id}`),
      get('GET /workloads/<an image id>', () => `/workloads/${aliceImage}`),
      get('GET /images/%E0%A4%A (a malformed escape)', () => '/images/%E0%A4%A', 400),
      uploadInto('workload "..%2F..%2Fdata%2Fdb.json"', () => '..%2F..%2Fdata%2Fdb.json', 404),
      uploadInto('workload "../../data"', () => '../../data', 404),
      uploadInto('workload "%00"', () => '%00', 404),
      uploadInto('a workload id with a NUL byte', () => `${aliceWorkload.id}\u0000`, 404),
      uploadInto('a 4000-character workload id', () => 'w'.repeat(4_000), 404),
      uploadInto('a 10000-character workload id (over the field size)', () => 'w'.repeat(10_000), 400),
      uploadInto("two workload ids, ours and bob's", () => [aliceWorkload.id, bobWorkload.id], 400, /workload_id/),
      uploadInto('an image id as the workload id', () => aliceImage, 404),
      uploadInto('workload "constructor"', () => 'constructor', 404),
      uploadInto('our workload id with a leading space', () => ` ${aliceWorkload.id}`, 404),
      uploadInto('our workload id in upper case', () => aliceWorkload.id.toUpperCase(), 404),
    ];
  };

  const uploadRows = (): Row[] => {
    const bad = (
      title: string,
      status: number,
      send: () => Promise<Reply>,
      message?: RegExp,
      extra: Partial<Row> = {},
    ): Row => ({ group: 'uploads', title, status, message, send, ...extra });
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>',
    );
    return [
      bad('an SVG named x.png', 415, () => uploadFile(svg, 'x.png', 'image/png')),
      bad('an HTML page named x.jpg', 415, () =>
        uploadFile(Buffer.from('<!doctype html><script>alert(1)</script>'), 'x.jpg', 'image/jpeg'),
      ),
      bad('a PNG signature and then garbage', 415, () =>
        uploadFile(Buffer.concat([PNG_SIGNATURE, randomBytes(512)]), 'x.png', 'image/png'),
      ),
      bad('a JPEG start marker and then text', 415, () =>
        uploadFile(
          Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('not really a jpeg '.repeat(30))]),
          'x.jpg',
          'image/jpeg',
        ),
      ),
      bad('an empty file named x.jpg', 400, () => uploadFile(Buffer.alloc(0), 'x.jpg', 'image/jpeg'), /empty/),
      bad(
        '"data" sent as a text field, not a file',
        400,
        () =>
          upload([
            { name: 'workload_id', value: aliceWorkload.id },
            { name: 'data', value: png.toString('latin1') },
          ]),
        /no file/,
      ),
      bad('three files', 400, () =>
        upload([
          { name: 'workload_id', value: aliceWorkload.id },
          ...[1, 2, 3].map((index) => ({ name: `f${index}`, value: png, filename: `${index}.png`, type: 'image/png' })),
        ]),
      ),
      bad('21 fields', 400, () =>
        upload([
          { name: 'workload_id', value: aliceWorkload.id },
          ...Array.from({ length: 20 }, (_, index) => ({ name: `x${index}`, value: 'y' })),
          { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
        ]),
      ),
      bad(
        'a declared 1 GB body',
        413,
        () =>
          call(port, {
            method: 'POST',
            path: '/images',
            headers: {
              ...asAlice(),
              'content-type': 'multipart/form-data; boundary=B',
              'content-length': String(1024 ** 3),
            },
            body: '--B\r\n',
          }),
        /limit/,
      ),
      bad(
        'a PNG header claiming 20000x20000',
        422,
        () => uploadFile(pngClaiming(20_000, 20_000), 'huge.png', 'image/png'),
        /20000x20000/,
        { memory: true },
      ),
      bad(
        'a PNG header claiming 65535x65535',
        422,
        () => uploadFile(pngClaiming(65_535, 65_535), 'huge.png', 'image/png'),
        /pixels/,
        { memory: true },
      ),
      bad(
        'a PNG header claiming 1x50000001',
        422,
        () => uploadFile(pngClaiming(1, 50_000_001), 'tall.png', 'image/png'),
        /pixels/,
        { memory: true },
      ),
      bad(
        'a PNG header claiming 2147483647x2147483647',
        422,
        () => uploadFile(pngClaiming(2 ** 31 - 1, 2 ** 31 - 1), 'huge.png', 'image/png'),
        /pixels/,
        { memory: true },
      ),
      bad(
        'a JPEG header claiming 65500x65500',
        422,
        () => uploadFile(jpegClaiming(65_500, 65_500), 'huge.jpg', 'image/jpeg'),
        /65500x65500/,
        { memory: true },
      ),
      bad('a JPEG header claiming 0x100', 422, () => uploadFile(jpegClaiming(0, 100), 'zero.jpg', 'image/jpeg')),
      bad('an unknown workload and a non-image file', 404, () =>
        uploadFile(Buffer.from('plain text'), 'x.png', 'image/png', randomUUID()),
      ),
      bad("into bob's workload, a claimed 20000x20000 PNG", 404, () =>
        uploadFile(pngClaiming(20_000, 20_000), 'huge.png', 'image/png', bobWorkload.id),
      ),
      bad(
        '"type" with a NUL byte',
        400,
        () => uploadPng(aliceWorkload.id, [{ name: 'type', value: 'original\u0000' }]),
        /type/,
      ),
      // no such job: it may have been deleted with its workload, and the answer is the same (gone)
      bad('a worker token with a job that does not exist', 410, () =>
        upload(
          [
            { name: 'type', value: 'filtered' },
            { name: 'job_id', value: randomUUID() },
            { name: 'lease_id', value: randomUUID() },
            { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
          ],
          bearer(workerToken),
        ),
      ),
      bad('a worker token with job "__proto__"', 410, () =>
        upload(
          [
            { name: 'type', value: 'filtered' },
            { name: 'job_id', value: '__proto__' },
            { name: 'lease_id', value: 'x' },
            { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
          ],
          bearer(workerToken),
        ),
      ),
      bad(
        'a filename "../../../../tmp/evil.png"',
        201,
        () => uploadFile(png, '../../../../tmp/evil.png', 'image/png'),
        undefined,
        { accepted: 'one-image-in-its-workload' },
      ),
      bad(
        'a filename with a NUL byte "x.png\\u0000.sh"',
        400,
        () => uploadFile(png, 'x.png\u0000.sh', 'image/png'),
        /multipart/,
      ),
      bad('a 3000-character filename', 201, () => uploadFile(png, `${'f'.repeat(3_000)}.png`, 'image/png'), undefined, {
        accepted: 'one-image-in-its-workload',
      }),
      bad(
        'a file field named "../../data"',
        201,
        () =>
          upload([
            { name: 'workload_id', value: aliceWorkload.id },
            { name: '../../data', value: png, filename: 'a.png', type: 'image/png' },
          ]),
        undefined,
        { accepted: 'one-image-in-its-workload' },
      ),
    ];
  };

  const credentialRows = (): Row[] => {
    const basic = (text: string | Buffer) => ({ authorization: `Basic ${Buffer.from(text).toString('base64')}` });
    const refused = (title: string, send: () => Promise<Reply>): Row => ({
      group: 'credentials',
      title,
      status: 401,
      send,
    });
    return [
      refused('an empty username over Basic', () => login(basic(':alice-pw'))),
      refused('bytes that are not UTF-8 over Basic', () => login(basic(Buffer.from([0xff, 0xfe, 0x3a, 0xc3, 0x28])))),
      refused('a 10000-character password for alice', () => login(basic(`alice:${'p'.repeat(10_000)}`))),
      refused("alice's password in upper case", () => login(basic('alice:ALICE-PW'))),
      refused('"Alice" with alice\'s password', () => login(basic('Alice:alice-pw'))),
      refused('"alice " (a trailing space) with alice\'s password', () => login(basic('alice :alice-pw'))),
      refused('"alice\\u0000" with alice\'s password', () => login(basic('alice\u0000:alice-pw'))),
      refused('"Basic ====" ', () => login({ authorization: 'Basic ====' })),
      refused('a password that is an object', () =>
        login(
          { 'content-type': 'application/json' },
          JSON.stringify({ username: 'alice', password: { toString: 'alice-pw' } }),
        ),
      ),
      refused('a password list holding the right password', () =>
        login({ 'content-type': 'application/x-www-form-urlencoded' }, 'username=alice&password=alice-pw&password=x'),
      ),
      refused('username "__proto__"', () =>
        login({ 'content-type': 'application/json' }, JSON.stringify({ username: '__proto__', password: 'alice-pw' })),
      ),
      refused('username "constructor"', () =>
        login(
          { 'content-type': 'application/json' },
          JSON.stringify({ username: 'constructor', password: 'alice-pw' }),
        ),
      ),
      refused('username "hasOwnProperty" over Basic', () => login(basic('hasOwnProperty:x'))),
    ];
  };

  const tokenRows = (): Row[] => {
    const endpoints: { title: string; send: (headers: Record<string, string>) => Promise<Reply> }[] = [
      {
        title: 'POST /workloads',
        send: (headers) =>
          call(port, {
            method: 'POST',
            path: '/workloads',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ workload_name: `token-probe-${randomBytes(3).toString('hex')}` }),
          }),
      },
      {
        title: 'GET /workloads/:id',
        send: (headers) => call(port, { path: `/workloads/${aliceWorkload.id}`, headers }),
      },
      {
        title: 'POST /images',
        send: (headers) =>
          upload(
            [
              { name: 'workload_id', value: aliceWorkload.id },
              { name: 'data', value: png, filename: 'a.png', type: 'image/png' },
            ],
            headers,
          ),
      },
      { title: 'GET /images/:id', send: (headers) => call(port, { path: `/images/${aliceImage}`, headers }) },
      { title: 'DELETE /logout', send: (headers) => call(port, { method: 'DELETE', path: '/logout', headers }) },
      { title: 'GET /status', send: (headers) => call(port, { path: '/status', headers }) },
    ];
    const tokens: { title: string; headers: () => Record<string, string>; skip?: string[] }[] = [
      // no token at all is in api.test.ts for every route but POST /workloads
      {
        title: 'no token',
        headers: () => ({}),
        skip: ['GET /workloads/:id', 'POST /images', 'GET /images/:id', 'DELETE /logout', 'GET /status'],
      },
      {
        title: 'a header "Bearer" and nothing else',
        headers: () => ({ authorization: 'Bearer' }),
        skip: ['GET /status'],
      },
      { title: 'a token with two parts', headers: () => bearer('abc.def') },
      {
        title: 'a token with a non-JSON header',
        headers: () => bearer(`${Buffer.from('not json').toString('base64url')}.e30.sig`),
      },
      {
        title: 'a token signed with another secret',
        headers: () => bearer(jwt.sign(claims(), 'another-secret', { algorithm: 'HS256' })),
        skip: ['GET /status'],
      },
      { title: 'an alg:none token', headers: () => bearer(unsignedToken(claims())), skip: ['GET /status'] },
      {
        title: 'an expired token',
        headers: () =>
          bearer(jwt.sign(claims({ exp: Math.floor(Date.now() / 1000) - 60 }), signingSecret, { algorithm: 'HS256' })),
        skip: ['GET /status'],
      },
      {
        title: 'a token not yet valid (nbf in an hour)',
        headers: () =>
          bearer(
            jwt.sign(claims({ nbf: Math.floor(Date.now() / 1000) + 3600 }), signingSecret, { algorithm: 'HS256' }),
          ),
      },
      {
        title: 'a token revoked by logout',
        headers: () => bearer(revokedToken),
        skip: ['POST /workloads', 'DELETE /logout', 'GET /status'],
      },
      { title: 'a 12 KB token', headers: () => bearer('a'.repeat(12_000)) },
    ];
    const rows: Row[] = [];
    for (const token of tokens) {
      for (const endpoint of endpoints) {
        if (token.skip?.includes(endpoint.title)) continue;
        rows.push({
          group: 'tokens',
          title: `${token.title} on ${endpoint.title}`,
          status: 401,
          send: () => endpoint.send(token.headers()),
        });
      }
    }
    return rows;
  };

  // the table: one row per hostile input (the requests read the fixtures only when they are sent)
  const table: Row[] = [...nameRows(), ...idRows(), ...uploadRows(), ...credentialRows(), ...tokenRows()];

  for (const row of table) {
    it(`${row.group}: ${row.title} -> ${row.status}`, async () => {
      const before = await snapshot();
      const rssBefore = process.memoryUsage().rss;
      const reply = await row.send();
      tried += 1;
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      const after = await snapshot();
      expect(reply.status, reply.text.slice(0, 300)).to.equal(row.status);
      expect(reply.headers['content-type'], reply.text.slice(0, 300)).to.match(/^application\/json/);
      if (row.status >= 400) {
        expect(reply.json.error?.code, reply.text.slice(0, 300)).to.equal(row.status);
        expect(reply.json.error?.message).to.be.a('string').and.not.equal('');
        if (row.message) expect(reply.json.error?.message).to.match(row.message);
        expect(after, 'nothing changed: users, workloads, images, jobs, files under images/').to.deep.equal(before);
      } else if (row.accepted === 'one-image-in-its-workload') {
        // the client's file name and field name are ignored: the file is <image id>.png in the workload's folder
        const added = after.files.filter((file) => !before.files.includes(file));
        expect(added).to.deep.equal([path.join(aliceWorkload.name, `${String(reply.json.image_id)}.png`)]);
        expect({ ...after, files: [] }).to.deep.equal({
          ...before,
          images: before.images + 1,
          jobs: before.jobs + 1,
          files: [],
        });
      }
      if (row.memory) expect(rssGrowth, 'rss growth in bytes').to.be.below(100 * 1024 * 1024);
    });
  }

  it('ten parallel creations of one new name: exactly one succeeds, the others are 409', async () => {
    const name = `race-${randomBytes(3).toString('hex')}`;
    const before = await snapshot();
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        createWorkload(index % 2 ? json({ workload_name: name }) : form(`workload_name=${name.toUpperCase()}`)),
      ),
    );
    tried += replies.length - 1;
    expect(replies.filter((reply) => reply.status === 201)).to.have.length(1);
    for (const reply of replies.filter((reply) => reply.status !== 201))
      expect(reply.json.error?.code, reply.text).to.equal(409);
    expect((await snapshot()).workloads).to.equal(before.workloads + 1);
  });

  it('the server still serves alice after all of it', async () => {
    const reply = await call(port, { path: `/workloads/${aliceWorkload.id}`, headers: asAlice() });
    expect(reply.status).to.equal(200);
    expect(reply.json.total_images).to.equal(4); // the first upload and the three accepted hostile file names
  });
});
