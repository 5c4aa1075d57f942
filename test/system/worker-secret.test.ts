// `npm run worker -- --controller localhost:<port> --worker-name w1 --tags a,b` on the server's machine,
// with no secret given: real processes started from one directory, as `npm start` and `npm run worker`
// start them (the launcher that sets the malloc tunables, the default data dir `data`).
import { chmod, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { isGray, decodeRgba, makeTestImage } from '../helpers/images.js';
import { DIST_BIN, killAll, spawnNode, waitFor, type Spawned } from '../helpers/processes.js';
import { pickServerPorts, spawnServerOn, type RunningServer, type ServerPorts } from '../helpers/restart.js';
import { makeDirs, type TestDirs } from '../helpers/system.js';

const LAUNCHER = path.join(DIST_BIN, 'with-malloc-tunables.js');

interface WorkerView {
  name: string;
  state: string;
  tags: string[];
}

describe("a worker started on the server's machine without a secret", function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let ports: ServerPorts;
  let server: RunningServer;
  let url: string;
  let client: TestClient;

  /** `npm run worker -- <args>` from `cwd`, with no secret in the environment either. */
  function worker(args: string[], cwd: string): Spawned {
    return spawnNode(LAUNCHER, ['dpip-worker', ...args, '--log-level', 'warn'], { DPIP_SECRET: '' }, [], cwd);
  }

  async function workers(): Promise<WorkerView[]> {
    const response = await fetch(`${url}/workers`, { headers: client.headers() });
    return ((await response.json()) as { workers: WorkerView[] }).workers;
  }

  /** A process that must refuse to start: its exit code and what it printed. */
  async function refusal(child: Spawned): Promise<{ code: number | null; output: string }> {
    const { code } = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('it did not exit')), 20_000)),
    ]);
    return { code, output: child.output() };
  }

  before(async () => {
    dirs = await makeDirs();
    ports = await pickServerPorts();
    // `npm start` from dirs.root: the data dir is the default, ./data, and the secret is generated there
    server = await spawnServerOn(dirs, ports, { ownSecret: true });
    url = server.url;
    client = await TestClient.login(url, 'alice', 'alice-pw');
  });

  after(async () => {
    await killAll();
    await dirs?.remove();
  });

  it('the server keeps a new secret in ./data/cluster-secret, private, and says how to add a worker', async () => {
    const file = path.join(dirs.root, 'data', 'cluster-secret');
    expect((await readFile(file, 'utf8')).trim()).to.match(/^[\w-]{20,}$/);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).to.equal(0o700);
    await waitFor('the banner', async () => server.process.output().includes('Ctrl-C'), 10_000);
    expect(server.process.output()).to.include(
      `npm run worker -- --controller localhost:${ports.controllerPort} --worker-name w1 --tags a,b\n`,
    );
  });

  it('registers with the secret of the data dir and filters an image', async () => {
    worker(['--controller', `localhost:${ports.controllerPort}`, '--worker-name', 'w1', '--tags', 'a,b'], dirs.root);
    await waitFor('w1 to register', async () => (await workers()).some((w) => w.name === 'w1' && w.state === 'alive'));
    expect((await workers()).find((w) => w.name === 'w1')?.tags).to.deep.equal(['a', 'b']);
    const workload = await client.createWorkload({ filter: 'grayscale', tags: ['a'] });
    const upload = await client.upload(
      workload.workload_id,
      await makeTestImage(64, 48, 'image/png', 7),
      'a.png',
      'image/png',
    );
    expect(upload.status).to.equal(201);
    const done = await client.waitForCompletion(workload.workload_id, 30_000);
    expect(done.done_jobs, JSON.stringify(done.failures)).to.equal(1);
    const result = await client.download(done.filtered_images[0]!);
    expect(isGray(await decodeRgba(result.data))).to.equal(true);
  });

  it('finds it from another directory with --data-dir', async () => {
    const args = ['--controller', `127.0.0.1:${ports.controllerPort}`, '--worker-name', 'w2'];
    worker([...args, '--data-dir', path.join(dirs.root, 'data')], tmpdir());
    await waitFor('w2 to register', async () => (await workers()).some((w) => w.name === 'w2' && w.state === 'alive'));
  });

  it('refuses, saying what to run, when the controller is on another machine', async () => {
    // 192.0.2.1 is a documentation address: nothing is dialled, the worker stops before it tries
    const args = ['--controller', '192.0.2.1:40899', '--worker-name', 'remote', '--tags', 'a,b'];
    const { code, output } = await refusal(worker(args, dirs.root));
    expect(code).to.equal(2);
    expect(output).to.include('not on this machine');
    expect(output).to.include(`npm run worker -- ${args.join(' ')} --log-level warn --secret <the secret>`);
    expect(output).to.include('cat data/cluster-secret');
  });

  it('refuses, naming the file it looked for, when started where no server keeps a secret', async () => {
    const args = ['--controller', `localhost:${ports.controllerPort}`, '--worker-name', 'lost'];
    const { code, output } = await refusal(worker(args, tmpdir()));
    expect(code).to.equal(2);
    expect(output).to.include(`none in ${path.join(tmpdir(), 'data', 'cluster-secret')}`);
    expect(output).to.include('--secret <the secret>');
  });

  it('refuses a secret file other users may read, with the chmod that fixes it, and so does the server', async () => {
    const file = path.join(dirs.root, 'data', 'cluster-secret');
    await chmod(file, 0o644);
    try {
      const args = ['--controller', `localhost:${ports.controllerPort}`, '--worker-name', 'w3'];
      const { code, output } = await refusal(worker(args, dirs.root));
      expect(code).to.equal(2);
      expect(output).to.include(`mode 0644`).and.include(`chmod 600 ${file}`);
      // the server will not start on it either
      const other = await pickServerPorts();
      const serverArgs = ['dpip', '--port', String(other.apiPort), '--controller-port', String(other.controllerPort)];
      const refused = await refusal(
        spawnNode(LAUNCHER, [...serverArgs, '--workers', '0'], { DPIP_SECRET: '' }, [], dirs.root),
      );
      expect(refused.code).to.equal(2);
      expect(refused.output).to.include(`chmod 600 ${file}`);
    } finally {
      await chmod(file, 0o600);
    }
  });
});
