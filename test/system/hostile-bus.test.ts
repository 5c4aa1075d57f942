// Hostile peers on the bus, against a real server (in this process) and a real worker process that
// keeps serving throughout: nanomsg REQ sockets and raw TCP send garbage, malformed JSON-RPC, batches,
// notifications, wrong secrets (a flood of them), oversized messages and random bytes to the
// controller's sockets, and wrong tokens to the worker's own REP socket. Every request gets a JSON-RPC
// error (or its connection is dropped), the controller logs the first bad message only, and a workload
// still completes on the real worker.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { expect } from 'chai';
import nano from 'nanomsg';
import { z } from 'zod';
import { startServer, type Server } from '../../bin/server.js';
import { connectRpc, RpcCallError } from '../../common/bus/index.js';
import { REGISTER_MAX_BYTES, SESSION_MAX_BYTES } from '../../common/protocol.js';
import { rpcPortOf, sessionPortOf } from '../../controller/index.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { freePorts } from '../helpers/ports.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { makeDirs, spawnWorker, testServerConfig, TEST_SECRET, type TestDirs } from '../helpers/system.js';

interface RpcReply {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string };
}

/** A nanomsg REQ socket that asks one thing at a time; null when no reply came in time. */
interface Asker {
  ask(payload: string | Buffer, timeoutMs?: number): Promise<string | null>;
  close(): void;
}

function asker(address: string): Asker {
  const socket = nano.socket('req', { linger: 0, rcvmaxsize: -1, reconn: 50 });
  let closed = false;
  socket.on('error', () => undefined);
  socket.connect(address);
  let waiting: ((reply: string) => void) | null = null;
  socket.on('data', (message: Buffer) => waiting?.(message.toString('utf8')));
  return {
    ask(payload, timeoutMs = 3_000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting = null;
          resolve(null);
        }, timeoutMs);
        waiting = (reply) => {
          clearTimeout(timer);
          waiting = null;
          resolve(reply);
        };
        socket.send(payload);
      });
    },
    close: () => {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}

function parse(reply: string | null): RpcReply {
  expect(reply, 'a reply').to.be.a('string');
  return JSON.parse(reply!) as RpcReply;
}

const SP_REQ = 0x30;
const SP_REP = 0x31;
const SP_PUB = 0x20;

/** The 8-byte SP protocol header a nanomsg/nng TCP peer sends first. */
function spHeader(protocol: number): Buffer {
  return Buffer.from([0x00, 0x53, 0x50, 0x00, protocol >> 8, protocol & 0xff, 0x00, 0x00]);
}

/** One SP/TCP message: a 64-bit big-endian length, then the bytes. */
function spFrame(payload: Buffer): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(payload.length));
  return Buffer.concat([length, payload]);
}

/** A raw TCP connection: what it received, and whether (and when) the server closed it. */
function rawTcp(
  port: number,
  send: Buffer,
  waitMs: number,
): Promise<{ received: Buffer; closedBy: 'server' | 'timeout' }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closedBy: 'server' | 'timeout') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closedBy });
    };
    const timer = setTimeout(() => finish('timeout'), waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => finish('server'));
    socket.on('end', () => finish('server'));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' ? finish('server') : reject(error),
    );
    socket.on('connect', () => socket.write(send));
  });
}

const RESOURCES = { cpu_load: 0, cores: 64, mem_free: 1e12, mem_total: 1e12, gpu: { present: true } };

function registerParams(
  secret: string | undefined,
  name: string,
  rpcAddress = 'tcp://127.0.0.1:1',
): Record<string, unknown> {
  return {
    ...(secret === undefined ? {} : { secret }),
    name,
    instance_id: `instance-${name}`,
    tags: [],
    rpc_address: rpcAddress,
    slots: 1,
    engine: 'jimp',
    filters: ['grayscale', 'blur'],
    resources: RESOURCES,
    running: [],
  };
}

const request = (method: string, params: unknown, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method, params });

describe('hostile peers on the bus', function () {
  this.timeout(40_000);
  let dirs: TestDirs;
  let server: Server;
  let worker: Spawned;
  let controllerPort: number;
  let rpcAddress: string;
  let client: TestClient;
  let workloadId: string;
  let bad = 0; // messages the controller should have counted as bad
  const logLines: { msg?: string; reason?: string; count?: number }[] = [];
  const workerStates: string[] = [];
  let sampler: NodeJS.Timeout | undefined;

  const steadyWorker = () => server.controller.workers.all().find((live) => live.record.name === 'steady');

  before(async () => {
    dirs = await makeDirs();
    const config = await testServerConfig(dirs);
    controllerPort = config.controller.port;
    rpcAddress = `tcp://127.0.0.1:${rpcPortOf(config.controller)}`;
    server = await startServer(config, collectingLogger(logLines));
    worker = spawnWorker({ controllerPort, name: 'steady', slots: 2 });
    await waitFor('the real worker to register', async () => steadyWorker()?.state === 'alive', 20_000);
    // the worker's state, every 100 ms, for as long as the hostile traffic lasts
    sampler = setInterval(() => workerStates.push(steadyWorker()?.state ?? 'gone'), 100);
    client = await TestClient.login(`http://127.0.0.1:${server.api.port}`, 'alice', 'alice-pw');
    workloadId = (await client.createWorkload({ workload_name: 'bus-under-fire', filter: 'blur' })).workload_id;
    for (let seed = 1; seed <= 3; seed++) {
      const upload = await client.upload(
        workloadId,
        await makeTestImage(96, 64, 'image/png', seed),
        `${seed}.png`,
        'image/png',
      );
      expect(upload.status).to.equal(201);
    }
  });

  after(async () => {
    clearInterval(sampler);
    await worker?.kill();
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  it('answers garbage, invalid JSON and JSON that is not a request with a JSON-RPC error', async () => {
    const rep = asker(rpcAddress);
    try {
      const cases: { payload: string | Buffer; code: number }[] = [
        { payload: randomBytes(256), code: -32700 },
        { payload: Buffer.from([0xff, 0xfe, 0x00, 0x01]), code: -32700 },
        { payload: '{"jsonrpc": "2.0", "id": 1, "method": "heartbeat", "params": {', code: -32700 },
        { payload: '', code: -32700 },
        { payload: '42', code: -32600 },
        { payload: '"register"', code: -32600 },
        { payload: 'null', code: -32600 },
        { payload: 'true', code: -32600 },
        { payload: '{}', code: -32600 },
        { payload: '{"jsonrpc": "1.0", "id": 1, "method": "register"}', code: -32600 },
        { payload: '{"jsonrpc": "2.0", "id": 1, "method": 7}', code: -32600 },
        { payload: '{"jsonrpc": "2.0", "id": {"a": 1}, "method": "heartbeat", "params": {}}', code: -32600 },
        { payload: request('heartbeat', {}, 'i'.repeat(10_000)), code: -32600 },
        { payload: '{"jsonrpc": "2.0", "id": 1, "result": {"known": true, "cancel": []}}', code: -32600 },
        {
          payload:
            '{"jsonrpc": "2.0", "id": 1, "method": "heartbeat", "params": {}, "error": {"code": 1, "message": "x"}}',
          code: -32600,
        },
      ];
      for (const { payload, code } of cases) {
        const reply = parse(await rep.ask(payload));
        bad += 1;
        expect(reply.jsonrpc).to.equal('2.0');
        expect(reply.error?.code, `${String(payload).slice(0, 60)} -> ${JSON.stringify(reply)}`).to.equal(code);
        expect(reply.error?.message).to.be.a('string').and.not.equal('');
      }
    } finally {
      rep.close();
    }
  });

  it('refuses wrong params, unknown methods, batches and notifications, without running them', async () => {
    const rep = asker(rpcAddress);
    try {
      const cases: { title: string; payload: string; code: number; message?: RegExp }[] = [
        {
          title: 'heartbeat without params',
          payload: '{"jsonrpc": "2.0", "id": 1, "method": "heartbeat"}',
          code: -32602,
        },
        { title: 'heartbeat with empty params', payload: request('heartbeat', {}), code: -32602, message: /token/ },
        { title: 'heartbeat with params as a list', payload: request('heartbeat', ['token']), code: -32602 },
        {
          title: 'fail with numbers for ids',
          payload: request('fail', { token: 'x', job_id: 1, lease_id: 2, error: 'e', retryable: true }),
          code: -32602,
        },
        {
          title: 'fail with a 5000-character error',
          payload: request('fail', {
            token: 'x',
            job_id: 'j',
            lease_id: 'l',
            error: 'e'.repeat(5_000),
            retryable: true,
          }),
          code: -32602,
        },
        {
          title: 'register with a bad rpc_address',
          payload: request('register', registerParams(TEST_SECRET, 'bad-address', 'http://evil.example/')),
          code: -32602,
          message: /rpc_address/,
        },
        {
          title: 'register with a path in its name',
          payload: request('register', registerParams(TEST_SECRET, '../../etc')),
          code: -32602,
          message: /name/,
        },
        {
          title: 'register with 100000 slots',
          payload: request('register', { ...registerParams(TEST_SECRET, 'greedy'), slots: 100_000 }),
          code: -32602,
        },
        {
          title: 'heartbeat with a forged token',
          payload: request('heartbeat', { token: 'forged', resources: RESOURCES, running: [] }),
          code: -32001,
        },
        { title: 'goodbye with a forged token', payload: request('goodbye', { token: 'a.b.c' }), code: -32001 },
        {
          title: 'the unknown method "shutdown"',
          payload: request('shutdown', {}),
          code: -32601,
          message: /unknown method/,
        },
        {
          title: 'the method "complete" (the filtered upload completes a job)',
          payload: request('complete', { token: 'x', job_id: 'j', lease_id: 'l', image_id: 'i' }),
          code: -32601,
        },
        { title: 'the method "__proto__"', payload: request('__proto__', {}), code: -32601 },
        { title: 'the method "constructor"', payload: request('constructor', {}), code: -32601 },
        { title: 'the method "toString"', payload: request('toString', {}), code: -32601 },
        { title: 'the method "hasOwnProperty"', payload: request('hasOwnProperty', 'register'), code: -32601 },
        { title: 'an empty batch', payload: '[]', code: -32600, message: /batch/ },
        {
          title: 'a batch holding a valid registration',
          payload: JSON.stringify([
            JSON.parse(request('register', registerParams(TEST_SECRET, 'batchy'))),
            JSON.parse(request('heartbeat', {}, 2)),
          ]),
          code: -32600,
          message: /batch/,
        },
        {
          title: 'a batch of 300 heartbeats (as many as fit in the 64 KiB of the registration socket)',
          payload: JSON.stringify(
            Array.from({ length: 300 }, (_, id) =>
              JSON.parse(request('heartbeat', { token: 'x', resources: RESOURCES, running: [] }, id)),
            ),
          ),
          code: -32600,
        },
        {
          title: 'a notification (no id) holding a valid registration',
          payload: JSON.stringify({
            jsonrpc: '2.0',
            method: 'register',
            params: registerParams(TEST_SECRET, 'sneaky'),
          }),
          code: -32600,
          message: /notification/,
        },
        {
          title: 'a request with a null id holding a valid registration',
          payload: request('register', registerParams(TEST_SECRET, 'nullish'), null),
          code: -32600,
        },
        {
          title: 'register without a secret',
          payload: request('register', registerParams(undefined, 'no-secret')),
          code: -32602,
          message: /secret/,
        },
        {
          title: 'register with an empty secret',
          payload: request('register', registerParams('', 'empty-secret')),
          code: -32602,
          message: /secret/,
        },
        {
          title: 'register with a wrong secret',
          payload: request('register', registerParams('not-the-secret', 'wrong-secret')),
          code: -32001,
          message: /wrong cluster secret/,
        },
        {
          title: 'register with the secret in other case',
          payload: request('register', registerParams(TEST_SECRET.toUpperCase(), 'upper-secret')),
          code: -32001,
        },
        {
          title: 'register as "steady" (the live worker\'s name) with a wrong secret',
          payload: request('register', registerParams('nope', 'steady')),
          code: -32001,
        },
      ];
      for (const { title, payload, code, message } of cases) {
        const reply = parse(await rep.ask(payload));
        bad += 1;
        expect(reply.error?.code, `${title}: ${JSON.stringify(reply).slice(0, 300)}`).to.equal(code);
        if (message) expect(reply.error?.message, title).to.match(message);
        expect(JSON.stringify(reply).length, `${title}: a short reply`).to.be.below(3_000);
      }
      const names = server.controller.workers.all().map((live) => live.record.name);
      expect(names, 'nothing in a batch or a notification was run').to.deep.equal(['steady']);
      expect(steadyWorker()?.state).to.equal('alive');
    } finally {
      rep.close();
    }
  });

  it(
    'refuses a flood of 500 registrations with a wrong secret from 10 sockets, ' + 'while the real worker stays alive',
    async () => {
      const sockets = Array.from({ length: 10 }, () => asker(rpcAddress));
      try {
        const started = Date.now();
        const codes = await Promise.all(
          sockets.map(async (rep, index) => {
            const seen: number[] = [];
            for (let attempt = 0; attempt < 50; attempt++) {
              const reply = parse(
                await rep.ask(
                  request(
                    'register',
                    registerParams(`guess-${index}-${attempt}`, `flood-${index}-${attempt}`),
                    attempt,
                  ),
                ),
              );
              seen.push(reply.error?.code ?? 0);
            }
            return seen;
          }),
        );
        bad += 500;
        expect(codes.flat().every((code) => code === -32001)).to.equal(true);
        expect(Date.now() - started, 'the flood is answered quickly').to.be.below(15_000);
        expect(server.controller.workers.all().map((live) => live.record.name)).to.deep.equal(['steady']);
        expect(steadyWorker()?.state).to.equal('alive');
      } finally {
        for (const rep of sockets) rep.close();
      }
    },
  );

  it(
    'drops a message over the 64 KiB maximum of the registration socket, ' +
      'and answers one just under it (2048 faults) with a short error',
    async () => {
      const big = asker(rpcAddress);
      try {
        const oversized = request('register', {
          ...registerParams('guess', 'oversized'),
          padding: 'p'.repeat(REGISTER_MAX_BYTES),
        });
        expect(await big.ask(oversized, 1_500), 'no reply to an oversized message').to.equal(null);
      } finally {
        big.close();
      }
      const rep = asker(rpcAddress);
      try {
        // 1024 entries (the most a registration may carry), each with two faults: 2048 issues to report
        const running = Array.from({ length: 1024 }, () => ({ job_id: '', lease_id: null }));
        const payload = request('register', { ...registerParams('guess', 'faulty'), running });
        expect(payload.length).to.be.within(REGISTER_MAX_BYTES / 4, REGISTER_MAX_BYTES);
        const reply = await rep.ask(payload);
        bad += 1;
        expect(parse(reply).error?.code).to.equal(-32602);
        expect(reply!.length, 'the error lists a few issues, not 2048').to.be.below(2_000);
        // and the socket still answers
        expect(parse(await rep.ask('not json')).error?.code).to.equal(-32700);
        bad += 1;
      } finally {
        rep.close();
      }
    },
  );

  it(
    'the session socket refuses, unparsed, whatever carries no valid worker token, ' +
      'and drops a message over its 512 KiB maximum',
    async () => {
      const session = asker(`tcp://127.0.0.1:${sessionPortOf({ port: controllerPort })}`);
      try {
        const cases = [
          request('heartbeat', { token: 'forged', resources: RESOURCES, running: [] }, 41),
          request('goodbye', { token: 'a.b.c' }, 'bye'),
          request('heartbeat', {}, 43),
          'not json at all',
          request('register', registerParams(TEST_SECRET, 'sneaky'), 44),
          `{"jsonrpc":"2.0","id":45,"method":"heartbeat","params":{"padding":"${'p'.repeat(300_000)}"}}`,
        ];
        const ids = [41, 'bye', 43, null, 44, 45];
        for (const [index, payload] of cases.entries()) {
          const reply = parse(await session.ask(payload));
          bad += 1;
          expect(reply.error?.code, `case ${index}`).to.equal(-32001);
          expect(reply.id, `case ${index}`).to.equal(ids[index]);
        }
        const oversized = request('heartbeat', { token: 'x', padding: 'p'.repeat(SESSION_MAX_BYTES) });
        expect(await session.ask(oversized, 1_500), 'no reply to an oversized message').to.equal(null);
      } finally {
        session.close();
      }
      expect(server.controller.workers.all().map((live) => live.record.name)).to.deep.equal(['steady']);
    },
  );

  it(
    'drops raw TCP connections that send random bytes, ' +
      'a wrong SP protocol or a huge frame; serves a raw SP REQ peer',
    async () => {
      const repPort = rpcPortOf({ port: controllerPort });
      const outcomes = await Promise.all([
        rawTcp(repPort, randomBytes(4096), 3_000),
        rawTcp(controllerPort, randomBytes(4096), 3_000),
        rawTcp(repPort, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 3_000),
        rawTcp(repPort, spHeader(SP_PUB), 3_000),
        rawTcp(controllerPort, spHeader(SP_REQ), 3_000),
        rawTcp(
          repPort,
          Buffer.concat([spHeader(SP_REQ), Buffer.from([0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00])]),
          3_000,
        ),
      ]);
      for (const [index, outcome] of outcomes.entries()) expect(outcome.closedBy, `case ${index}`).to.equal('server');

      // a well-behaved raw peer: handshake as REQ, one request (request id with the top bit set)
      const requestId = Buffer.from([0x80, 0x00, 0x12, 0x34]);
      const body = Buffer.from(request('goodbye', { token: 'raw' }, 'raw-1'));
      const raw = await rawTcp(
        repPort,
        Buffer.concat([spHeader(SP_REQ), spFrame(Buffer.concat([requestId, body]))]),
        1_000,
      );
      bad += 1;
      expect(raw.received.subarray(0, 8).equals(spHeader(SP_REP))).to.equal(true);
      const length = Number(raw.received.readBigUInt64BE(8));
      expect(raw.received.subarray(16, 20).equals(requestId)).to.equal(true);
      const reply = JSON.parse(raw.received.subarray(20, 16 + length).toString('utf8')) as RpcReply;
      expect(reply).to.deep.include({ jsonrpc: '2.0', id: 'raw-1' });
      expect(reply.error?.code).to.equal(-32001);
      expect(steadyWorker()?.state).to.equal('alive');
    },
  );

  it("the worker's own REP socket refuses assign, cancel and ping with a wrong token, and garbage", async () => {
    const address = steadyWorker()!.record.rpc_address;
    const rep = asker(address);
    try {
      const cases: { payload: string; code: number }[] = [
        {
          payload: request('assign', {
            token: 'forged',
            job_id: 'j',
            lease_id: 'l',
            image_id: 'i',
            workload_id: workloadId,
            filter: 'blur',
          }),
          code: -32001,
        },
        {
          payload: request('assign', {
            token: '',
            job_id: 'j',
            lease_id: 'l',
            image_id: 'i',
            workload_id: workloadId,
            filter: 'blur',
          }),
          code: -32001,
        },
        { payload: request('cancel', { token: 'forged', job_id: 'j' }), code: -32001 },
        { payload: request('ping', { token: 'forged' }), code: -32001 },
        { payload: request('assign', {}), code: -32602 },
        { payload: JSON.stringify({ jsonrpc: '2.0', method: 'assign', params: { token: 'forged' } }), code: -32600 },
        { payload: 'garbage', code: -32700 },
        { payload: request('register', registerParams(TEST_SECRET, 'x')), code: -32601 },
      ];
      for (const { payload, code } of cases) {
        const reply = parse(await rep.ask(payload));
        expect(reply.error?.code, payload.slice(0, 80)).to.equal(code);
      }
    } finally {
      rep.close();
    }
    expect(worker.child.exitCode).to.equal(null);
  });

  it(
    'an RPC client closed with calls still queued fails them; ' +
      'none is sent on the closed socket (that aborted the process)',
    async () => {
      // nobody listens: the first call times out, and only then would the queued ones go out
      const rpc = connectRpc(`tcp://127.0.0.1:${await freePorts()}`, 200);
      const schema = z.object({ accepted: z.boolean() });
      const calls = [rpc.call('ping', {}, schema), rpc.call('ping', {}, schema), rpc.call('ping', {}, schema, 100)];
      rpc.close();
      const outcomes = await Promise.all(
        calls.map((call) =>
          call.then(
            () => 'resolved',
            (error: unknown) => error,
          ),
        ),
      );
      for (const outcome of outcomes) expect(outcome).to.be.instanceOf(RpcCallError);
      // the process is still here to look: give a late send the time it would need to crash it
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((outcomes[1] as Error).message).to.match(/closed|timeout/i);
    },
  );

  it(
    'a hostile REP peer cannot crash an RPC client: ' + 'null, lists, wrong ids and garbage only time the call out',
    async () => {
      const port = await freePorts();
      const address = `tcp://127.0.0.1:${port}`;
      const hostile = nano.socket('rep', { linger: 0 });
      hostile.on('error', () => undefined);
      hostile.bind(address);
      const replies = [
        'null',
        '[null]',
        '[]',
        '7',
        '{"jsonrpc":"2.0","id":99999,"result":{"accepted":true}}',
        '{"jsonrpc":"2.0","id":null,"error":"not an object"}',
        'garbage',
        '{"jsonrpc":"2.0","id":{"x":1},"result":1}',
      ];
      let served = 0;
      hostile.on('data', (message: Buffer) => {
        const { id } = JSON.parse(message.toString('utf8')) as { id: number };
        // the hostile replies first, then a proper one
        hostile.send(
          served < replies.length
            ? replies[served]!
            : JSON.stringify({ jsonrpc: '2.0', id, result: { accepted: true } }),
        );
        served += 1;
      });
      const rpc = connectRpc(address, 300);
      try {
        for (let index = 0; index < replies.length; index++) {
          const outcome = await rpc.call('ping', {}, z.object({ accepted: z.boolean() })).then(
            () => 'resolved',
            (error: unknown) => (error instanceof Error ? error.message : String(error)),
          );
          expect(outcome, replies[index]).to.match(/timeout|time/i);
        }
        expect(await rpc.call('ping', {}, z.object({ accepted: z.boolean() }))).to.deep.equal({ accepted: true });
        // a well-formed reply of the wrong shape is an error, not a crash either
        hostile.removeAllListeners('data');
        hostile.on('data', (message: Buffer) => {
          const { id } = JSON.parse(message.toString('utf8')) as { id: number };
          hostile.send(JSON.stringify({ jsonrpc: '2.0', id, result: { accepted: 'yes, and more' } }));
        });
        const error = await rpc
          .call('ping', {}, z.object({ accepted: z.boolean() }))
          .catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(RpcCallError);
      } finally {
        rpc.close();
        hostile.close();
      }
    },
  );

  it('refuses GPU numbers out of bounds (huge, negative, infinite) in a registration and a heartbeat', async () => {
    const rep = asker(rpcAddress);
    const session = asker(`tcp://127.0.0.1:${sessionPortOf({ port: controllerPort })}`);
    // JSON.stringify cannot write 1e999, which JSON.parse reads as Infinity: it replaces this number
    const INFINITE = 123456.789;
    const withInfinity = (payload: string) => payload.replaceAll(String(INFINITE), '1e999');
    const gpus = [
      { present: true, utilization: 1e308 },
      { present: true, utilization: -1 },
      { present: true, utilization: INFINITE },
      { present: true, memory_free_mb: 1e300 },
      { present: true, memory_total_mb: -5 },
      { present: true, memory_free_mb: INFINITE },
    ];
    const resources = (gpu: object) => ({ ...RESOURCES, gpu });
    try {
      for (const gpu of gpus) {
        const params = { ...registerParams(TEST_SECRET, 'gpu-liar'), resources: resources(gpu) };
        const reply = parse(await rep.ask(withInfinity(request('register', params))));
        bad += 1;
        expect(reply.error?.code, JSON.stringify(gpu)).to.equal(-32602);
      }
      const honest = { present: true, model: 'honest', utilization: 30, memory_free_mb: 1000, memory_total_mb: 8000 };
      const params = { ...registerParams(TEST_SECRET, 'gpu-honest'), resources: resources(honest) };
      const registered = parse(await rep.ask(request('register', params)));
      const { token } = registered.result as { token: string };
      for (const gpu of gpus) {
        const heartbeat = request('heartbeat', { token, resources: resources(gpu), running: [] });
        const reply = parse(await session.ask(withInfinity(heartbeat)));
        bad += 1;
        expect(reply.error?.code, JSON.stringify(gpu)).to.equal(-32602);
      }
      const busy = { ...honest, utilization: 90 };
      const beat = parse(await session.ask(request('heartbeat', { token, resources: resources(busy), running: [] })));
      expect(beat.result).to.deep.equal({ known: true, cancel: [] });
      const listed = server.controller.workers.all().find((live) => live.record.name === 'gpu-honest');
      expect(listed?.resources.gpu).to.deep.equal(busy);
      expect(parse(await session.ask(request('goodbye', { token }))).result).to.deep.equal({ accepted: true });
    } finally {
      rep.close();
      session.close();
    }
    expect(steadyWorker()?.state).to.equal('alive');
  });

  it(
    'meanwhile the real worker stayed alive and finished the workload, ' +
      'and the controller logged the bad messages once',
    async () => {
      for (let seed = 4; seed <= 5; seed++) {
        const upload = await client.upload(
          workloadId,
          await makeTestImage(96, 64, 'image/png', seed),
          `${seed}.png`,
          'image/png',
        );
        expect(upload.status).to.equal(201);
      }
      const done = await client.waitForCompletion(workloadId, 30_000);
      expect(done.total_images).to.equal(5);
      expect(done.done_jobs).to.equal(5);
      expect(done.filtered_images).to.have.length(5);
      clearInterval(sampler);
      // the PUB socket still announces
      const sub = nano.socket('sub', { linger: 0 });
      sub.on('error', () => undefined);
      sub.connect(`tcp://127.0.0.1:${controllerPort}`);
      const announcement = await new Promise<string>((resolve) =>
        sub.once('data', (message: Buffer) => resolve(message.toString('utf8'))),
      );
      sub.close();
      expect((JSON.parse(announcement) as { method: string }).method).to.equal('announce');
      expect(workerStates.length).to.be.above(10);
      expect(
        workerStates.every((state) => state === 'alive'),
        `worker states: ${[...new Set(workerStates)].join(', ')}`,
      ).to.equal(true);
      expect(
        logLines.filter((line) => /missed its heartbeats|leases expired/.test(line.msg ?? '')),
        'no missed heartbeat',
      ).to.deep.equal([]);
      const rejected = logLines.filter((line) => line.msg === 'rejected a bad message on the bus');
      expect(bad).to.be.above(500).and.below(1000);
      expect(rejected, `${bad} bad messages sent`).to.have.length(1);
      expect(rejected[0]!.count).to.equal(1);
      expect(String(rejected[0]!.reason).length).to.be.at.most(303);
    },
  );
});
