// Faults of the server process, on the real `dpip` process and real worker processes: SIGKILL and
// restart on the same data and ports, workers that start before the server or outlive it, SIGTERM.
import { expect } from 'chai';
import { TestClient, type UploadBody } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import {
  childPids,
  countLines,
  cpuSeconds,
  filteredPerOriginal,
  isAlive,
  jobStates,
  logLines,
  pickServerPorts,
  readDatastoreFiles,
  seconds,
  sleep,
  spawnServerOn,
  spawnWorkerProcess,
  type RunningServer,
} from '../helpers/restart.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const SERVER_FLAGS = ['--lease-ms', '2000', '--heartbeat-ms', '500'];
/** An idle, waiting worker may use this much CPU in IDLE_WINDOW_MS (a busy loop uses all of it). */
const IDLE_CPU_LIMIT_S = 0.3;
const IDLE_WINDOW_MS = 3000;
const IDLE_LINES_LIMIT = 10;

interface StatusBody {
  workers?: { alive: number; slots: number };
}

async function aliveWorkers(client: TestClient): Promise<number> {
  const response = await fetch(`${client.url}/status`, { headers: client.headers() });
  if (!response.ok) return -1;
  return ((await response.json()) as StatusBody).workers?.alive ?? -1;
}

interface Uploads {
  /** Image ids of the uploads answered 201, in answer order. */
  answered: string[];
  /** Uploads answered with another status. */
  refused: { status: number; body: UploadBody }[];
  /** Uploads that got no answer (connection refused or reset). */
  lost: number;
  /** Resolves when every lane has stopped (a lane stops at its first unanswered upload). */
  finished: Promise<void>;
  stop(): void;
}

/** Uploads `total` images over `lanes` concurrent connections, until done, stopped, or the server goes away. */
function uploadConcurrently(
  client: TestClient,
  workloadId: string,
  images: Buffer[],
  total: number,
  lanes: number,
): Uploads {
  let stopped = false;
  const uploads: Uploads = {
    answered: [],
    refused: [],
    lost: 0,
    finished: Promise.resolve(),
    stop: () => (stopped = true),
  };
  uploads.finished = Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let index = lane; index < total && !stopped; index += lanes) {
        try {
          const upload = await client.upload(workloadId, images[index % images.length]!, `${index}.png`, 'image/png');
          if (upload.status === 201) uploads.answered.push(upload.body.image_id!);
          else uploads.refused.push(upload);
        } catch {
          uploads.lost += 1;
          return;
        }
      }
    }),
  ).then(() => undefined);
  return uploads;
}

/**
 * Checks the datastore files every few ms while it runs; stop() returns how many reads there were, or
 * throws the first failure.
 */
function watchDatastore(dataDir: string): { stop(): number } {
  let reads = 0;
  let failure: Error | null = null;
  const timer = setInterval(() => {
    try {
      readDatastoreFiles(dataDir);
      reads += 1;
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }, 15);
  return {
    stop() {
      clearInterval(timer);
      if (failure) throw failure;
      return reads;
    },
  };
}

/** CPU seconds and output lines of a process over a window of time. */
async function measureIdle(worker: Spawned, windowMs: number): Promise<{ cpu: number; lines: number }> {
  const pid = worker.child.pid!;
  const cpuBefore = cpuSeconds(pid);
  const linesBefore = countLines(worker.output());
  await sleep(windowMs);
  return { cpu: cpuSeconds(pid) - cpuBefore, lines: countLines(worker.output()) - linesBefore };
}

function registrations(worker: Spawned): number {
  return logLines(worker.output()).filter((line) => line.msg === 'registered').length;
}

/** Opens the datastore the way the server does (in this process, on other ports) and hands its data to `check`. */
async function inspectDatastore(
  dirs: TestDirs,
  check: (data: Awaited<ReturnType<typeof startTestServer>>['server']['controller']['store']['data']) => void,
): Promise<void> {
  const { server } = await startTestServer(dirs);
  try {
    check(server.controller.store.data);
  } finally {
    await server.close();
  }
}

async function completeSmallWorkload(client: TestClient, images: Buffer[]): Promise<void> {
  const workload = await client.createWorkload({ filter: 'grayscale' });
  for (const [index, data] of images.entries()) {
    const upload = await client.upload(workload.workload_id, data, `${index}.png`, 'image/png');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
  }
  const done = await client.waitForCompletion(workload.workload_id, 60_000);
  expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
  expect(new Set(done.filtered_images).size).to.equal(images.length);
}

describe('faults: the server process', function () {
  this.timeout(120_000);
  let images: Buffer[];
  let dirs: TestDirs | null = null;

  before(async () => {
    images = await Promise.all(
      Array.from({ length: 8 }, (_, index) => makeTestImage(640, 480, 'image/png', 700 + index)),
    );
  });

  afterEach(async () => {
    await killAll();
    await dirs?.remove();
    dirs = null;
  });

  it(
    'SIGKILL mid-workload, restart on the same data and ports: ' +
      'answered uploads survive and get filtered, the workers rejoin by themselves',
    async () => {
      dirs = await makeDirs();
      const ports = await pickServerPorts();
      let server: RunningServer = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
      const workers = ['keep-a', 'keep-b'].map((name) =>
        spawnWorkerProcess({ controllerPort: ports.controllerPort, name, engine: 'jimp', slots: 1, logLevel: 'info' }),
      );
      const client = await TestClient.login(server.url, 'alice', 'alice-pw');
      await waitFor('both workers to register', async () => (await aliveWorkers(client)) === 2, 30_000, 50);
      const workload = await client.createWorkload({ filter: 'grayscale' });

      const watcher = watchDatastore(dirs.dataDir);
      // enough uploads that the lanes are still sending when two jobs are done, however fast the server answers
      const total = 400;
      const lanes = 4;
      const uploads = uploadConcurrently(client, workload.workload_id, images, total, lanes);
      // mid-workload: uploads in flight, jobs running, some done
      await waitFor(
        'uploads answered and jobs done, with uploads still being sent',
        async () =>
          uploads.answered.length >= 12 &&
          uploads.answered.length < total - lanes &&
          (await client.workload(workload.workload_id)).done_jobs >= 2,
        60_000,
        20,
      );
      const killedAt = Date.now();
      await server.process.kill('SIGKILL');
      const onDisk = readDatastoreFiles(dirs.dataDir); // must parse right after the kill
      await uploads.finished;
      const answered = [...uploads.answered];
      expect(uploads.refused, 'uploads refused before the kill').to.deep.equal([]);
      expect(uploads.lost, 'uploads in flight at the kill').to.be.at.least(1);

      server = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
      const rejoinedAt = await waitFor(
        'the workers to rejoin',
        async () => ((await aliveWorkers(client)) === 2 ? Date.now() : null),
        30_000,
        20,
      );
      for (const id of answered)
        expect((await client.download(id)).status, `answered upload ${id} after the restart`).to.equal(200);
      const done = await client.waitForCompletion(workload.workload_id, 60_000);
      const completedAt = Date.now();
      const reads = watcher.stop();
      console.log(
        `  recovery: SIGKILL server -> restarted ${seconds(server.listeningAt - killedAt)} s after the kill; ` +
          `workers rejoined ${seconds(rejoinedAt - server.listeningAt)} s after it listened; ` +
          `workload completed ${seconds(completedAt - server.listeningAt)} s after it listened ` +
          `(${answered.length} answered uploads, ${uploads.lost} cut off; datastore parsed ${reads} times, ` +
          `journal ${onDisk.journalEntries} entries${onDisk.tornTail ? ', torn tail' : ''} at the kill)`,
      );

      expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
      expect(done.total_images).to.be.at.least(answered.length);
      expect(done.filtered_images).to.have.length(done.total_images);
      expect(new Set(done.filtered_images).size).to.equal(done.total_images);
      for (const imageId of done.filtered_images.slice(0, 3))
        expect(isGray(await decodeRgba((await client.download(imageId)).data))).to.equal(true);
      // the same worker processes, never restarted
      for (const worker of workers) expect(worker.child.exitCode, worker.output()).to.equal(null);

      const termAt = Date.now();
      server.process.child.kill('SIGTERM');
      const stopped = await Promise.race([server.process.exited, sleep(20_000).then(() => null)]);
      console.log(
        `  recovery: SIGTERM server (2 external workers) -> exited with code ${stopped?.code} ` +
          `${seconds(Date.now() - termAt)} s after the signal`,
      );
      expect(stopped?.code, server.process.output()).to.equal(0);
      await inspectDatastore(dirs, (data) => {
        const perOriginal = filteredPerOriginal(data, workload.workload_id);
        for (const id of answered) {
          expect(data.images[id]?.type, `answered upload ${id} in the datastore`).to.equal('original');
          expect(perOriginal.get(id), `filtered images of answered upload ${id}`).to.equal(1);
        }
        for (const [original, count] of perOriginal) expect(count, `filtered images of ${original}`).to.equal(1);
        expect(jobStates(data, workload.workload_id)).to.deep.equal({ done: perOriginal.size });
      });
    },
  );

  it(
    'a worker started before the server waits quietly, ' + 'joins when it comes up, and again across a server restart',
    async () => {
      dirs = await makeDirs();
      const ports = await pickServerPorts();
      const early = spawnWorkerProcess({
        controllerPort: ports.controllerPort,
        name: 'early',
        slots: 2,
        logLevel: 'info',
      });
      await waitFor(
        'the worker to wait for the controller',
        async () => early.output().includes('waiting for the controller'),
        20_000,
        20,
      );
      const before = await measureIdle(early, IDLE_WINDOW_MS);

      let server = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
      const joinedAt = await waitFor(
        'the worker to register',
        async () => (registrations(early) >= 1 ? Date.now() : null),
        30_000,
        20,
      );
      console.log(
        `  recovery: worker before the server -> ${before.cpu.toFixed(2)} s CPU and ${before.lines} log lines ` +
          `in ${seconds(IDLE_WINDOW_MS)} s of waiting; ` +
          `joined ${seconds(joinedAt - server.listeningAt)} s after the server listened`,
      );
      expect(before.cpu, 'CPU seconds while waiting').to.be.below(IDLE_CPU_LIMIT_S);
      expect(before.lines, `log lines while waiting:\n${early.output()}`).to.be.below(IDLE_LINES_LIMIT);
      const client = await TestClient.login(server.url, 'alice', 'alice-pw');
      await completeSmallWorkload(client, images.slice(0, 4));

      // across a restart: the server goes away, the worker notices and waits for it to come back
      const linesAtStop = countLines(early.output());
      await server.process.kill('SIGTERM');
      const stoppedAt = Date.now();
      await sleep(2000); // its heartbeat fails and it starts to register again
      const during = await measureIdle(early, IDLE_WINDOW_MS);
      const outageLines = countLines(early.output()) - linesAtStop;
      server = await spawnServerOn(dirs, ports, { args: SERVER_FLAGS });
      const rejoinedAt = await waitFor(
        'the worker to register again',
        async () => (registrations(early) >= 2 ? Date.now() : null),
        30_000,
        20,
      );
      console.log(
        `  recovery: server restart -> the waiting worker used ${during.cpu.toFixed(2)} s CPU ` +
          `and printed ${during.lines} lines in ${seconds(IDLE_WINDOW_MS)} s ` +
          `(${outageLines} lines over the ${seconds(server.listeningAt - stoppedAt)} s outage); ` +
          `rejoined ${seconds(rejoinedAt - server.listeningAt)} s after the server listened`,
      );
      expect(during.cpu, 'CPU seconds while waiting').to.be.below(IDLE_CPU_LIMIT_S);
      expect(outageLines, `log lines during the outage:\n${early.output()}`).to.be.below(IDLE_LINES_LIMIT);
      expect(early.child.exitCode).to.equal(null);
      await completeSmallWorkload(client, images.slice(4, 8));
    },
  );

  it(
    'SIGTERM on a server with local workers: ' +
      'the workers drain, everything exits 0, every answered upload is on disk',
    async () => {
      dirs = await makeDirs();
      const ports = await pickServerPorts();
      const server = await spawnServerOn(dirs, ports, {
        workers: 2,
        args: [...SERVER_FLAGS, '--worker-slots', '1', '--engine', 'jimp'],
      });
      const client = await TestClient.login(server.url, 'alice', 'alice-pw');
      await waitFor('both local workers to register', async () => (await aliveWorkers(client)) === 2, 30_000, 50);
      const locals = childPids(server.process.child.pid!);
      expect(locals, 'local worker processes').to.have.length(2);
      const workload = await client.createWorkload({ filter: 'grayscale' });

      // uploads keep coming while the server drains and closes
      const uploads = uploadConcurrently(client, workload.workload_id, images, 400, 3);
      await waitFor(
        'uploads answered and jobs running',
        async () => uploads.answered.length >= 8 && (await client.workload(workload.workload_id)).running_jobs >= 1,
        60_000,
        20,
      );
      const termAt = Date.now();
      const answeredAtTerm = uploads.answered.length;
      server.process.child.kill('SIGTERM');
      const exit = await Promise.race([server.process.exited, sleep(45_000).then(() => null)]);
      const exitedAfter = Date.now() - termAt;
      uploads.stop();
      await uploads.finished;
      const answered = [...uploads.answered];
      const localsLeft = locals.filter(isAlive);
      console.log(
        `  recovery: SIGTERM server (2 local workers) -> exited with code ${exit?.code} ` +
          `${seconds(exitedAfter)} s after the signal; ${answered.length} answered uploads ` +
          `(${answered.length - answeredAtTerm} of them after the signal), ${uploads.lost} cut off at the close`,
      );
      expect(exit, 'the server exits within 45 s').to.not.equal(null);
      expect(exit!.code, server.process.output()).to.equal(0);
      // bound: the local workers' drain (at most 35 s before SIGKILL) plus closing
      expect(exitedAfter).to.be.below(40_000);
      expect(localsLeft, 'local workers still running after the server exited').to.deep.equal([]);
      expect(uploads.refused, 'uploads refused while the server ran').to.deep.equal([]);
      readDatastoreFiles(dirs.dataDir);

      let states: Record<string, number> = {};
      await inspectDatastore(dirs, (data) => {
        for (const id of answered) {
          expect(data.images[id]?.type, `answered upload ${id} in the datastore`).to.equal('original');
          expect(data.jobs[data.images[id]!.job_id!], `job of answered upload ${id}`).to.not.equal(undefined);
        }
        states = jobStates(data, workload.workload_id);
        // drained, not abandoned: nothing failed, nothing left running under a worker that left
        expect(states.failed ?? 0).to.equal(0);
        expect(states.running ?? 0, JSON.stringify(states)).to.equal(0);
      });
      console.log(`           job states on disk: ${JSON.stringify(states)}`);
    },
  );

  it('SIGKILL on a server with local workers: its local workers do not outlive it', async () => {
    dirs = await makeDirs();
    const ports = await pickServerPorts();
    const server = await spawnServerOn(dirs, ports, { workers: 2, args: [...SERVER_FLAGS, '--worker-slots', '1'] });
    const client = await TestClient.login(server.url, 'alice', 'alice-pw');
    await waitFor('both local workers to register', async () => (await aliveWorkers(client)) === 2, 30_000, 50);
    const locals = childPids(server.process.child.pid!);
    expect(locals, 'local worker processes').to.have.length(2);
    const killedAt = Date.now();
    await server.process.kill('SIGKILL');
    try {
      const goneAt = await waitFor(
        'the orphaned local workers to exit',
        async () => (locals.some(isAlive) ? null : Date.now()),
        15_000,
        20,
      );
      console.log(
        `  recovery: SIGKILL server (2 local workers) -> its local workers exited ` +
          `${seconds(goneAt - killedAt)} s after it`,
      );
    } finally {
      for (const pid of locals.filter(isAlive)) process.kill(pid, 'SIGKILL');
    }
  });

  it('SIGKILL on a server whose local workers are still loading: they do not outlive it either', async () => {
    dirs = await makeDirs();
    const ports = await pickServerPorts();
    const server = await spawnServerOn(dirs, ports, { workers: 2, args: SERVER_FLAGS });
    // the worker processes exist but are still loading their modules: the channel closes before they listen to it
    const locals = await waitFor(
      'two local worker processes',
      async () => {
        const pids = childPids(server.process.child.pid!);
        return pids.length === 2 ? pids : null;
      },
      10_000,
      5,
    );
    await server.process.kill('SIGKILL');
    try {
      await waitFor('the orphaned local workers to exit', async () => !locals.some(isAlive), 15_000, 20);
    } finally {
      for (const pid of locals.filter(isAlive)) process.kill(pid, 'SIGKILL');
    }
  });
});
