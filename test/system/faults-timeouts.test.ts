// A job must not stay `running` for ever (issue 12, point 6): the API address given to the workers points at a
// listener that accepts connections and never answers, while the workers keep heartbeating. The controller's
// job timeout releases such a job; the worker's HTTP timeouts and its per-job deadline end it on its side.
import { expect } from 'chai';
import { createServer as createTcpServer, connect, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from '../../bin/server.js';
import type { ServerConfig } from '../../bin/server.js';
import { DEFAULT_RETRY_POLICY, type Job } from '../../controller/index.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import { liveWorker, logLines, seconds, spawnWorkerProcess } from '../helpers/restart.js';
import { makeDirs, startTestServer, type TestDirs } from '../helpers/system.js';

const LEASE_MS = 2000;
const HEARTBEAT_MS = 500;
const JOB_TIMEOUT_MS = 3000;

type Mode = 'silent' | 'forward';

/**
 * A TCP listener told to workers as the API's address. `silent`: it accepts every connection and never sends a
 * byte. `forward`: new connections are passed on to the real API.
 */
class ApiStandIn {
  mode: Mode = 'silent';
  targetPort = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: TcpServer;

  constructor() {
    this.server = createTcpServer((socket) => {
      this.track(socket);
      if (this.mode === 'forward') {
        const upstream = connect(this.targetPort, '127.0.0.1');
        this.track(upstream);
        socket.pipe(upstream).pipe(socket);
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
      } else {
        socket.on('error', () => undefined);
      }
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }
}

describe('faults: a job must not stay running for ever', function () {
  this.timeout(90_000);
  let dirs: TestDirs | null = null;
  let server: Server | null = null;
  let standIn: ApiStandIn | null = null;
  let image: Buffer;

  before(async () => {
    image = await makeTestImage(320, 240, 'image/png', 7);
  });

  afterEach(async () => {
    await killAll();
    try {
      await server?.close();
      await standIn?.close();
    } finally {
      server = null;
      standIn = null;
      await dirs?.remove();
      dirs = null;
    }
  });

  /** A server whose workers are told the stand-in's address as the API's. */
  async function start(
    overrides: Partial<ServerConfig['controller']>,
  ): Promise<{ server: Server; client: TestClient; controllerPort: number; standIn: ApiStandIn }> {
    standIn = new ApiStandIn();
    const publicApiUrl = await standIn.listen();
    dirs = await makeDirs();
    const started = await startTestServer(dirs, {
      leaseMs: LEASE_MS,
      heartbeatMs: HEARTBEAT_MS,
      publicApiUrl,
      ...overrides,
    });
    server = started.server;
    standIn.targetPort = started.server.api.port;
    return {
      server: started.server,
      client: await TestClient.login(started.url, 'alice', 'alice-pw'),
      controllerPort: started.config.controller.port,
      standIn,
    };
  }

  /** Once the worker is registered, uploads one image and returns its job's id once the job runs, and since when. */
  async function runOneJob(
    s: Server,
    client: TestClient,
    worker: Spawned,
    name: string,
    data: Buffer = image,
  ): Promise<{ jobId: string; workloadId: string; startedAt: number }> {
    await waitFor(`${name} to register`, async () => liveWorker(s, name)?.state === 'alive', 30_000, 20).catch(
      (error: unknown) => {
        throw new Error(`${String(error)}\n${name} printed:\n${worker.output()}`);
      },
    );
    const workload = await client.createWorkload({ filter: 'grayscale' });
    const upload = await client.upload(workload.workload_id, data, 'a.png', 'image/png');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
    const jobId = s.controller.store.data.images[upload.body.image_id!]!.job_id!;
    const startedAt = await waitFor(
      'the job to run',
      async () => {
        const job = s.controller.store.data.jobs[jobId];
        // a running job's updated_at is when it started
        return job?.state === 'running' ? Date.parse(job.updated_at) : null;
      },
      30_000,
      5,
    );
    return { jobId, workloadId: workload.workload_id, startedAt };
  }

  /** The job once it has failed for good. */
  function failedForGood(s: Server, jobId: string): Promise<Job> {
    return waitFor(
      'the job to fail for good',
      async () => {
        const job = s.controller.store.data.jobs[jobId]!;
        return job.state === 'failed' ? job : null;
      },
      30_000,
      20,
    );
  }

  it(
    'the API never answers and the worker keeps heartbeating: the controller releases the job after the job ' +
      'timeout as a failed attempt, the worker drops it, and it ends failed after its attempts',
    async () => {
      const {
        server: s,
        client,
        controllerPort,
      } = await start({
        jobTimeoutMs: JOB_TIMEOUT_MS,
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, backoff: { baseMs: 100, maxMs: 200 } },
      });
      // the worker's own timeouts are its defaults, longer than the job timeout: the controller has to act
      const worker = spawnWorkerProcess({ controllerPort, name: 'stuck', engine: 'jimp', slots: 1, logLevel: 'info' });
      const { jobId, startedAt } = await runOneJob(s, client, worker, 'stuck');

      // the finding: with a 2 s lease, the job was still running after 30 s
      const releasedAt = await waitFor(
        'the job to leave running (it was still running 30 s after it started)',
        async () => {
          const job = s.controller.store.data.jobs[jobId]!;
          return job.state !== 'running' || Date.parse(job.updated_at) !== startedAt ? Date.now() : null;
        },
        30_000,
        5,
      );
      const droppedAt = await waitFor(
        'the worker to drop the released job',
        async () => {
          const line = logLines(worker.output()).find((entry) => entry.msg === 'job dropped' && entry.job_id === jobId);
          return line ? Number(line.time) : null;
        },
        10_000,
        20,
      );
      const ended = await failedForGood(s, jobId);
      const endedAt = Date.parse(ended.finished_at!);
      console.log(
        `  recovery: API never answers -> job released ${seconds(releasedAt - startedAt)} s after it started ` +
          `(job timeout ${seconds(JOB_TIMEOUT_MS)} s, lease ${seconds(LEASE_MS)} s); the worker dropped it ` +
          `${seconds(droppedAt - releasedAt)} s later; failed after ${ended.attempts} attempts ` +
          `${seconds(endedAt - startedAt)} s after the first started`,
      );
      expect(releasedAt - startedAt, 'released after the job timeout').to.be.at.least(JOB_TIMEOUT_MS);
      expect(releasedAt - startedAt, 'released within the job timeout + 1 s').to.be.at.most(JOB_TIMEOUT_MS + 1000);
      expect(droppedAt - releasedAt, 'dropped by the worker within a lease').to.be.at.most(LEASE_MS);
      expect(ended.attempts).to.equal(2);
      expect(ended.error).to.match(/ran too long/);
      const view = await client.workload(ended.workload_id);
      expect(view.status).to.equal('completed');
      expect(view.failures).to.have.length(1);
      expect(view.failures[0]!.error).to.match(/ran too long/);
    },
  );

  it(
    "the API never answers: the worker's call fails on its idle timeout, reported retryable; once the API " +
      'answers, the job is done',
    async () => {
      const { server: s, client, controllerPort, standIn: api } = await start({});
      const worker = spawnWorkerProcess({
        controllerPort,
        name: 'patient',
        engine: 'jimp',
        slots: 1,
        logLevel: 'info',
        args: ['--http-idle-timeout', '1s'],
      });
      const { jobId, workloadId, startedAt } = await runOneJob(s, client, worker, 'patient');
      const failed = await waitFor(
        'the worker to report its download failed',
        async () => {
          const job = s.controller.store.data.jobs[jobId]!;
          return job.error ? { at: Date.now(), job: structuredClone(job) } : null;
        },
        10_000,
        5,
      );
      api.mode = 'forward';
      const done = await client.waitForCompletion(workloadId, 30_000);
      const doneAt = Date.now();
      console.log(
        `  recovery: API never answers -> the worker's download failed on its idle timeout (1 s) ` +
          `${seconds(failed.at - startedAt)} s after the job started; done ${seconds(doneAt - failed.at)} s after ` +
          'the API answered again',
      );
      expect(failed.job.error).to.equal(
        `download of image ${failed.job.image_id} failed: idle timeout: nothing sent or received for 1s`,
      );
      expect(failed.job.attempts, 'the failure counted one attempt').to.equal(1);
      // the worker starts its download as it accepts the job, a moment before the controller records the start
      expect(failed.at - startedAt, 'failed within the idle timeout + 1 s').to.be.within(1000 - 100, 2000);
      expect(done.done_jobs).to.equal(1);
      expect(s.controller.store.data.jobs[jobId]).to.include({ state: 'done', attempts: 2, error: null });
      expect(worker.output()).to.not.match(/"level":(50|60)/);
    },
  );

  it(
    "a job not done by the worker's --job-deadline is given up while filtering (its jimp thread terminated), " +
      'reported retryable, and fails after its attempts; the worker goes on with the next job',
    async () => {
      const {
        server: s,
        client,
        controllerPort,
        standIn: api,
      } = await start({
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, backoff: { baseMs: 100, maxMs: 200 } },
      });
      api.mode = 'forward';
      const deadlineMs = 300;
      const worker = spawnWorkerProcess({
        controllerPort,
        name: 'slow',
        engine: 'jimp',
        slots: 1,
        logLevel: 'info',
        args: ['--job-deadline', `${deadlineMs}ms`],
      });
      // a job of a second or more for jimp: past the deadline while it filters
      const large = await makeTestImage(1200, 900, 'image/png', 8);
      const { jobId, startedAt } = await runOneJob(s, client, worker, 'slow', large);
      const firstFailure = await waitFor(
        'the worker to give up the job',
        async () => (s.controller.store.data.jobs[jobId]!.error ? Date.now() : null),
        10_000,
        5,
      );
      const ended = await failedForGood(s, jobId);
      console.log(
        `  recovery: job past the worker's deadline (${deadlineMs} ms) -> reported failed ` +
          `${seconds(firstFailure - startedAt)} s after it started; failed for good after ${ended.attempts} attempts`,
      );
      expect(ended.attempts).to.equal(2);
      expect(ended.error).to.equal(
        'job deadline passed: not done 300ms after it started (--job-deadline), while filtering; ' +
          'its work was abandoned',
      );
      // the worker's deadline runs from its acceptance of the job, a moment before the controller records the start
      expect(firstFailure - startedAt, 'reported within the deadline + 1 s').to.be.within(
        deadlineMs - 100,
        deadlineMs + 1000,
      );

      // the jimp thread that was abandoned was replaced: a small job is done
      const next = await client.createWorkload({ filter: 'grayscale' });
      const small = await makeTestImage(64, 48, 'image/jpeg', 9);
      expect((await client.upload(next.workload_id, small, 'b.jpg', 'image/jpeg')).status).to.equal(201);
      const done = await client.waitForCompletion(next.workload_id, 20_000);
      expect(done.done_jobs, JSON.stringify(done.failures)).to.equal(1);
      expect(worker.output()).to.not.match(/"level":(50|60)/);
    },
  );
});
