import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { rpcPortOf } from '../../controller/index.js';
import type { Server } from '../../bin/server.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const run = promisify(execFile);
const INSTALLER = fileURLToPath(new URL('../../../scripts/install-nng-utils.sh', import.meta.url));

describe('wire interop with nng (nngcat from nng-utils)', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let server: Server;
  let controllerPort: number;

  before(async () => {
    await run('bash', [INSTALLER]);
    dirs = await makeDirs();
    const started = await startTestServer(dirs);
    server = started.server;
    controllerPort = started.config.controller.port;
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  it("an nng SUB socket receives the controller's announcement", async () => {
    const { stdout } = await run('nngcat', [
      '--sub',
      '--dial',
      `tcp://127.0.0.1:${controllerPort}`,
      '--subscribe',
      '',
      '--ascii',
      '--recv-timeout',
      '5',
      '--count',
      '1',
    ]);
    const announcement = JSON.parse(stdout.trim().split('\n')[0]!) as {
      method: string;
      params: { register_port: number; system_name: string };
    };
    expect(announcement.method).to.equal('announce');
    expect(announcement.params.register_port).to.equal(rpcPortOf({ port: controllerPort }));
    expect(announcement.params.system_name).to.equal('DPIP-test');
  });

  it('an nng REQ socket gets JSON-RPC answers from the controller, and a wrong secret is refused', async () => {
    const request = {
      jsonrpc: '2.0',
      id: 7,
      method: 'register',
      params: {
        secret: 'not-the-secret',
        name: 'intruder',
        instance_id: 'x',
        tags: [],
        rpc_address: 'tcp://127.0.0.1:1',
        slots: 1,
        engine: 'jimp',
        filters: ['grayscale'],
        resources: { cpu_load: 0, cores: 1, mem_free: 1, mem_total: 2, gpu: { present: false } },
        running: [],
      },
    };
    const address = `tcp://127.0.0.1:${rpcPortOf({ port: controllerPort })}`;
    const { stdout } = await run('nngcat', [
      '--req',
      '--dial',
      address,
      '--data',
      JSON.stringify(request),
      '--ascii',
      '--recv-timeout',
      '5',
    ]);
    const reply = JSON.parse(stdout.trim()) as { id: number; error?: { message: string } };
    expect(reply.id).to.equal(7);
    expect(reply.error?.message).to.match(/wrong cluster secret/);
    expect(server.controller.workers.all()).to.have.length(0);

    const garbage = await run('nngcat', [
      '--req',
      '--dial',
      address,
      '--data',
      'not json at all',
      '--ascii',
      '--recv-timeout',
      '5',
    ]);
    expect(JSON.parse(garbage.stdout.trim()).error.code).to.equal(-32700);
  });
});
