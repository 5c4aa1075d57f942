import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { connectRpc } from '../../common/bus/index.js';
import { CONTROLLER_METHODS, registerResultSchema, type RegisterResult } from '../../common/protocol.js';
import { rpcPortOf } from '../../controller/index.js';
import { createTokens, type Tokens } from '../../controller/tokens.js';
import { openStore, type Store } from '../../controller/store/index.js';
import { freePorts } from '../helpers/ports.js';
import { makeDirs, startTestServer, TEST_SECRET, type TestDirs } from '../helpers/system.js';

describe('tokens: a token checked once is still refused once it expires or is revoked', () => {
  let dirs: TestDirs;
  let store: Store;
  let tokens: Tokens;

  before(async () => {
    dirs = await makeDirs();
    store = await openStore(dirs.dataDir);
    tokens = createTokens(store, randomBytes(48), { user: 1, worker: 600 });
  });

  after(async () => {
    await store.close();
    await dirs.remove();
  });

  it('refuses a token that was accepted before, after its expiry', async function () {
    this.timeout(5000);
    const { token } = tokens.issue('alice', 'user');
    expect(tokens.verify(token)?.sub).to.equal('alice');
    expect(tokens.verify(token)?.sub, 'accepted again').to.equal('alice');
    await new Promise((resolve) => setTimeout(resolve, 2100)); // exp is in whole seconds
    expect(tokens.verify(token)).to.equal(null);
  });

  it('refuses a token that was accepted before, after it is revoked', async () => {
    const { token, claims } = tokens.issue('some-worker', 'worker');
    expect(tokens.verify(token)?.scope).to.equal('worker');
    await tokens.revoke(claims);
    expect(tokens.verify(token)).to.equal(null);
  });

  it('gives a URL token its purpose, a life no longer than its user token, and refuses it with that one', async () => {
    const user = tokens.issue('carol', 'user');
    const events = tokens.issueForUrl(user.claims, 'events');
    expect(events.claims).to.include({ sub: 'carol', scope: 'events' });
    expect(events.claims.session).to.deep.equal({ jti: user.claims.jti, exp: user.claims.exp });
    expect(events.claims.exp, 'not past the user token (1 s here)').to.equal(user.claims.exp);
    const archive = tokens.issueForUrl(user.claims, 'archive', 'workload-1');
    expect(tokens.verify(archive.token)).to.include({ scope: 'archive', workload: 'workload-1' });
    expect(tokens.isLive(user.claims)).to.equal(true);
    await tokens.revoke(user.claims);
    expect(tokens.isLive(user.claims)).to.equal(false);
    expect(tokens.verify(events.token), 'its user token was revoked').to.equal(null);
    expect(tokens.verify(archive.token)).to.equal(null);
    const worker = tokens.issue('w', 'worker');
    expect(() => tokens.issueForUrl(worker.claims, 'events')).to.throw(/user token/);
  });

  it('refuses a token whose signature was changed after the real one was accepted', () => {
    const { token } = tokens.issue('bob', 'worker');
    expect(tokens.verify(token)).to.not.equal(null);
    const at = token.length - 10; // inside the signature
    const forged = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
    expect(tokens.verify(forged)).to.equal(null);
  });
});

describe('worker tokens: a worker that registers again gets a new token, and the one it had is revoked', function () {
  this.timeout(30_000);
  let dirs: TestDirs;
  let running: Awaited<ReturnType<typeof startTestServer>> | undefined;

  before(async () => {
    dirs = await makeDirs();
  });

  after(async () => {
    await running?.server.close();
    await dirs?.remove();
  });

  /** A server on the same data dir, as after a restart. */
  async function restart(): Promise<void> {
    await running?.server.close();
    running = await startTestServer(dirs);
  }

  async function register(instanceId: string): Promise<RegisterResult> {
    const bus = connectRpc(`tcp://127.0.0.1:${rpcPortOf({ port: running!.config.controller.port })}`);
    try {
      return await bus.call(
        CONTROLLER_METHODS.register,
        {
          secret: TEST_SECRET,
          name: 'returning',
          instance_id: instanceId,
          tags: ['nothing-runs-here'],
          rpc_address: `tcp://127.0.0.1:${await freePorts()}`,
          slots: 1,
          engine: 'jimp',
          filters: ['grayscale'],
          resources: { cpu_load: 0, cores: 1, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } },
          running: [],
        },
        registerResultSchema,
      );
    } finally {
      bus.close();
    }
  }

  /** 404 for a valid worker token (the image is not in its jobs), 401 for a refused one. */
  async function imageStatus(token: string): Promise<number> {
    const res = await fetch(`${running!.url}/images/${randomUUID()}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return res.status;
  }

  it('after a server restart (the same process), and when a new process takes the name over', async () => {
    await restart();
    const first = await register('process-1');
    expect(await imageStatus(first.token)).to.equal(404);

    await restart();
    const second = await register('process-1');
    expect(second.worker_id, 'the same worker record').to.equal(first.worker_id);
    expect(second.token).to.not.equal(first.token);
    expect(await imageStatus(first.token), 'the token from before the restart').to.equal(401);
    expect(await imageStatus(second.token)).to.equal(404);

    await restart();
    const third = await register('process-2');
    expect(third.worker_id, 'a new process: a new record').to.not.equal(second.worker_id);
    expect(await imageStatus(second.token), "the old process's token").to.equal(401);
    expect(await imageStatus(third.token)).to.equal(404);
    expect(await imageStatus(first.token), 'the revocation survived the restarts').to.equal(401);
  });
});
