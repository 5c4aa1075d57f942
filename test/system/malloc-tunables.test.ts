// The glibc malloc tunables: how they merge with a user's own, and that the processes `npm start`
// and `npm run worker` run really start with them (read back from /proc/<pid>/environ).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { sharedEngineThreads } from '../../bin/local-workers.js';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { hasMallocTunables, withMallocTunables } from '../../common/malloc-tunables.js';
import { DIST_BIN, killAll, spawnNode, waitFor, type Spawned } from '../helpers/processes.js';
import {
  childPids,
  isAlive,
  logLines,
  pickServerPorts,
  spawnServerOn,
  spawnWorkerProcess,
} from '../helpers/restart.js';
import { makeDirs, TEST_SECRET, type TestDirs } from '../helpers/system.js';

const LAUNCHER = path.join(DIST_BIN, 'with-malloc-tunables.js');
const HINT = /malloc tunables are not set/;

/** The GLIBC_TUNABLES a live process started with, as an environment value. glibc turns the ':' between
 * tunables into NUL bytes in place while it parses them, so in /proc/<pid>/environ they follow one another
 * as separate strings. */
function startedWithTunables(pid: number): string | undefined {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const first = environ.findIndex((entry) => entry.startsWith('GLIBC_TUNABLES='));
  if (first < 0) return undefined;
  const rest = environ.slice(first + 1);
  const end = rest.findIndex((entry) => !entry.startsWith('glibc.'));
  const more = end < 0 ? rest : rest.slice(0, end);
  return [environ[first]!.slice('GLIBC_TUNABLES='.length), ...more].join(':');
}

/** The node flags a live process started with: its command line's arguments before the script. */
function nodeFlagsOf(pid: number): string[] {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1);
  return argv.slice(
    0,
    argv.findIndex((arg) => arg.endsWith('.js')),
  );
}

describe('glibc malloc tunables', function () {
  this.timeout(60_000);

  describe('withMallocTunables', () => {
    it('sets both when the environment has none', () => {
      const env = withMallocTunables({ PATH: '/bin' });
      expect(env.PATH).to.equal('/bin');
      expect(env.GLIBC_TUNABLES!.split(':').map((tunable) => tunable.split('=')[0])).to.have.members([
        'glibc.malloc.mmap_threshold',
        'glibc.malloc.trim_threshold',
      ]);
      expect(hasMallocTunables(env)).to.equal(true);
      expect(hasMallocTunables({ PATH: '/bin' })).to.equal(false);
    });

    it("keeps the user's own tunables and values, and adds only what is missing", () => {
      const input = { GLIBC_TUNABLES: 'glibc.pthread.rseq=0:glibc.malloc.trim_threshold=1048576' };
      const env = withMallocTunables(input);
      const tunables = env.GLIBC_TUNABLES!.split(':');
      expect(tunables.slice(0, 2)).to.deep.equal(['glibc.pthread.rseq=0', 'glibc.malloc.trim_threshold=1048576']);
      expect(tunables.filter((tunable) => tunable.startsWith('glibc.malloc.trim_threshold='))).to.have.length(1);
      expect(tunables.some((tunable) => tunable.startsWith('glibc.malloc.mmap_threshold='))).to.equal(true);
      expect(input.GLIBC_TUNABLES).to.equal('glibc.pthread.rseq=0:glibc.malloc.trim_threshold=1048576');
      expect(withMallocTunables(env).GLIBC_TUNABLES).to.equal(env.GLIBC_TUNABLES);
    });
  });

  describe('processes', () => {
    if (process.platform !== 'linux') return;
    let dirs: TestDirs;
    /** Processes started by a launcher: killAll() knows only the launchers. */
    let descendants: number[] = [];

    beforeEach(async () => {
      dirs = await makeDirs();
      descendants = [];
    });
    afterEach(async () => {
      await killAll();
      for (const pid of descendants) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      await dirs.remove();
    });

    /** Starts `npm start`'s launcher with a server and one local worker; resolves once both run. */
    async function launchServer(
      logLevel = 'warn',
    ): Promise<{ launcher: Spawned; serverPid: number; workerPid: number }> {
      const ports = await pickServerPorts();
      const launcher = spawnNode(LAUNCHER, [
        'dpip',
        '--port',
        String(ports.apiPort),
        '--controller-port',
        String(ports.controllerPort),
        '--host',
        '127.0.0.1',
        '--data-dir',
        dirs.dataDir,
        '--images-dir',
        dirs.imagesDir,
        '--workers',
        '1',
        '--secret',
        TEST_SECRET,
        '--log-level',
        logLevel,
      ]);
      await waitFor(
        'the server to listen',
        async () => (await fetch(`http://127.0.0.1:${ports.apiPort}/status`)).status === 401,
        20_000,
      );
      const [serverPid] = childPids(launcher.child.pid!);
      expect(serverPid, 'the server runs as the launcher child').to.be.a('number');
      descendants.push(serverPid!);
      const [workerPid] = await waitFor('the local worker', async () =>
        childPids(serverPid!).length === 1 ? childPids(serverPid!) : null,
      );
      descendants.push(workerPid!);
      return { launcher, serverPid: serverPid!, workerPid: workerPid! };
    }

    it('local workers started by the server run with them, though the server itself was started without', async () => {
      const ports = await pickServerPorts();
      const server = await spawnServerOn(dirs, ports, { workers: 2 });
      expect(startedWithTunables(server.process.child.pid!) ?? '').to.equal('');
      const workers = await waitFor('two local workers', async () => {
        const pids = childPids(server.process.child.pid!);
        return pids.length === 2 ? pids : null;
      });
      for (const pid of workers) expect(hasMallocTunables({ GLIBC_TUNABLES: startedWithTunables(pid) })).to.equal(true);
      // each takes its share of the cores for a job's threads: two workers of cores/2 slots, 1 thread a job
      const slots = Math.max(1, Math.floor(availableParallelism() / 2));
      for (const pid of workers) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        expect(argv[argv.indexOf('--engine-threads') + 1]).to.equal(String(sharedEngineThreads(2, slots)));
      }
    });

    it('`npm start` runs the server with them, and a SIGTERM to it stops the server cleanly', async () => {
      const { launcher, serverPid, workerPid } = await launchServer();
      expect(hasMallocTunables({ GLIBC_TUNABLES: startedWithTunables(serverPid) })).to.equal(true);
      // and the server with its node flags, its worker with a worker's
      expect(nodeFlagsOf(serverPid)).to.include.members([...NODE_FLAGS.dpip]);
      expect(nodeFlagsOf(workerPid)).not.to.include.members([...NODE_FLAGS.dpip]);
      expect(nodeFlagsOf(workerPid)).to.include.members([...NODE_FLAGS['dpip-worker']]);

      launcher.child.kill('SIGTERM');
      expect(await launcher.exited).to.deep.equal({ code: 0, signal: null });
      expect(isAlive(serverPid), 'the server is gone').to.equal(false);
      expect(isAlive(workerPid), 'its worker is gone').to.equal(false);
    });

    it('a server started without its node flags says how to get them; `npm start` gives them', async () => {
      const direct = await spawnServerOn(dirs, await pickServerPorts(), { logLevel: 'info' });
      const hint = (output: string) => logLines(output).find((line) => /without its node flags/.test(line.msg ?? ''));
      const said = await waitFor('the hint', async () => hint(direct.process.output()) ?? null);
      expect(said.missing).to.deep.equal([...NODE_FLAGS.dpip]);
      expect(said.msg).to.include(`node ${NODE_FLAGS.dpip.join(' ')} dist/bin/dpip.js`);
      await direct.process.kill('SIGTERM');

      const { launcher } = await launchServer('info');
      expect(logLines(launcher.output()).some((line) => /listening/.test(line.msg ?? ''))).to.equal(true);
      expect(hint(launcher.output())).to.equal(undefined);
    });

    it('a launcher killed outright leaves no orphans: the server and its worker stop', async () => {
      const { launcher, serverPid, workerPid } = await launchServer();
      launcher.child.kill('SIGKILL');
      await launcher.exited;
      await waitFor(
        'the server and its worker to exit',
        async () => !isAlive(serverPid) && !isAlive(workerPid),
        40_000,
      );
    });

    it('refuses a program it does not know, with exit 2 and a message', async () => {
      const launcher = spawnNode(LAUNCHER, ['../../etc/passwd']);
      expect((await launcher.exited).code).to.equal(2);
      expect(launcher.output()).to.match(/must be one of dpip, dpip-worker/);
    });

    it('a worker started without them says how to get them; one started by `npm run worker` does not', async () => {
      const ports = await pickServerPorts();
      const workerArgs = (name: string): string[] => [
        '--controller',
        `127.0.0.1:${ports.controllerPort}`,
        '--worker-name',
        name,
        '--engine',
        'jimp',
        '--log-level',
        'info',
      ];
      const bare = spawnWorkerProcess({
        controllerPort: ports.controllerPort,
        name: 'bare',
        engine: 'jimp',
        logLevel: 'info',
      });
      const launched: Spawned = spawnNode(LAUNCHER, ['dpip-worker', ...workerArgs('launched')], {
        DPIP_SECRET: TEST_SECRET,
      });
      // both log their start-up lines before they find the controller (which is not there)
      await waitFor(
        'both workers to log',
        async () => logLines(bare.output()).length > 0 && logLines(launched.output()).length > 0,
      );
      await waitFor('the hint', async () => HINT.test(bare.output()), 10_000);
      expect(launched.output()).not.to.match(HINT);
      // and the same for a worker's node flags
      const flagsHint = (output: string) =>
        logLines(output).find((line) => /without its node flags/.test(line.msg ?? ''));
      const said = await waitFor('the node flags hint', async () => flagsHint(bare.output()) ?? null, 10_000);
      expect(said.missing).to.deep.equal([...NODE_FLAGS['dpip-worker']]);
      expect(said.msg).to.include(`node ${NODE_FLAGS['dpip-worker'].join(' ')} dist/bin/dpip-worker.js`);
      expect(flagsHint(launched.output())).to.equal(undefined);
      const [workerPid] = await waitFor('the launched worker', async () => {
        const pids = childPids(launched.child.pid!);
        return pids.length > 0 ? pids : null;
      });
      expect(nodeFlagsOf(workerPid!)).to.include.members([...NODE_FLAGS['dpip-worker']]);
    });
  });
});
