// Faults of worker processes, on real worker processes around an in-process server (so the tests can
// look at leases, holders and image records): SIGKILL, SIGSTOP/SIGCONT and SIGTERM mid-job.
import { expect } from 'chai';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from '../../bin/server.js';
import type { ControllerConfig } from '../../controller/index.js';
import { TestClient } from '../helpers/api.js';
import { decodeRgba, isGray, makeTestImage } from '../helpers/images.js';
import { killAll, waitFor, type Spawned } from '../helpers/processes.js';
import {
  filteredPerOriginal,
  jobStates,
  liveWorker,
  logLines,
  seconds,
  sleep,
  spawnWorkerProcess,
} from '../helpers/restart.js';
import { setEnv, startS3Server, storeConfigFor, type TestS3Server } from '../helpers/s3-server.js';
import { makeDirs, spawnWorker, startTestServer, type TestDirs } from '../helpers/system.js';

const LEASE_MS = 2000;
const HEARTBEAT_MS = 500;
const IMAGE_COUNT = 10;

/** Uploads every image; each must be answered 201. */
async function uploadAll(client: TestClient, workloadId: string, images: Buffer[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [index, data] of images.entries()) {
    const upload = await client.upload(workloadId, data, `${index}.png`, 'image/png');
    expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
    ids.push(upload.body.image_id!);
  }
  return ids;
}

/**
 * Exactly one filtered image record per original, every job done, distinct results in the view, each
 * a valid grey PNG.
 */
async function expectExactlyOnce(server: Server, client: TestClient, workloadId: string, count: number): Promise<void> {
  const data = server.controller.store.data;
  const perOriginal = filteredPerOriginal(data, workloadId);
  expect(perOriginal.size, 'originals').to.equal(count);
  for (const [original, filtered] of perOriginal)
    expect(filtered, `filtered images of original ${original}`).to.equal(1);
  expect(jobStates(data, workloadId)).to.deep.equal({ done: count });
  const view = await client.workload(workloadId);
  expect(view.status).to.equal('completed');
  expect(view.filtered_images).to.have.length(count);
  expect(new Set(view.filtered_images).size).to.equal(count);
  for (const imageId of view.filtered_images) {
    const result = await client.download(imageId);
    expect(result.status).to.equal(200);
    expect(result.type).to.equal('image/png');
    expect(isGray(await decodeRgba(result.data)), `filtered image ${imageId} is a valid grey image`).to.equal(true);
  }
}

/** Waits until the jobs are no longer held by the worker; returns when (epoch ms). */
function waitForRelease(server: Server, workerId: string, jobIds: string[], timeoutMs: number): Promise<number> {
  return waitFor(
    `jobs ${jobIds.join(', ')} to leave worker ${workerId}`,
    async () => {
      const held = server.controller.jobs.heldBy(workerId);
      return jobIds.every((id) => !held.has(id)) ? Date.now() : null;
    },
    timeoutMs,
    10,
  );
}

/** The jobs a worker holds once one of them is running (assigned and accepted by the worker). */
function waitForRunningJob(server: Server, workerId: string): Promise<string[]> {
  return waitFor(
    `worker ${workerId} to run a job`,
    async () => {
      const held = [...server.controller.jobs.heldBy(workerId)];
      return held.some((id) => server.controller.store.data.jobs[id]?.state === 'running') ? held : null;
    },
    60_000,
    5,
  );
}

interface ProxiedRequest {
  token: string;
  method: string;
  path: string;
  status: number | null;
  at: number;
  /** When the API answered (epoch ms). */
  answeredAt: number | null;
}

/**
 * An HTTP proxy in front of the API, told to workers as the API URL (publicApiUrl): it lets a test see
 * each worker request (who, what, answered with which status) and act at that moment.
 */
class ObservingProxy {
  readonly requests: ProxiedRequest[] = [];
  targetPort = 0;
  /** A request arrived from a worker; a promise returned holds it here (not passed on to the API) until it settles. */
  onRequest: (request: ProxiedRequest) => Promise<void> | void = () => undefined;
  /** The API answered it; the worker has not seen the answer yet. */
  onUpstreamAnswer: (request: ProxiedRequest) => void = () => undefined;
  /** The answer has been passed on to the worker. */
  onAnswered: (request: ProxiedRequest) => void = () => undefined;
  private readonly server: HttpServer;

  constructor() {
    this.server = createServer((req, res) => {
      const entry: ProxiedRequest = {
        token: (req.headers.authorization ?? '').replace(/^Bearer /, ''),
        method: req.method ?? '',
        path: req.url ?? '',
        status: null,
        at: Date.now(),
        answeredAt: null,
      };
      this.requests.push(entry);
      const held = this.onRequest(entry);
      if (held) void held.then(() => this.forward(req, res, entry));
      else this.forward(req, res, entry);
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest): void {
    const upstream = httpRequest(
      { host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: req.headers },
      (response) => {
        entry.status = response.statusCode ?? 502;
        entry.answeredAt = Date.now();
        this.onUpstreamAnswer(entry);
        res.writeHead(entry.status, response.headers);
        response.pipe(res);
        res.on('finish', () => this.onAnswered(entry));
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe('faults: worker processes', function () {
  this.timeout(120_000);
  let images: Buffer[];
  let large: Buffer[];
  let dirs: TestDirs | null = null;
  let server: Server | null = null;
  let proxy: ObservingProxy | null = null;
  let s3: TestS3Server | null = null;
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    // jimp workers with one slot and 640x480 noise: a job lasts long enough to be caught in the middle
    images = await Promise.all(
      Array.from({ length: IMAGE_COUNT }, (_, index) => makeTestImage(640, 480, 'image/png', 500 + index)),
    );
    large = await Promise.all([1, 2].map((seed) => makeTestImage(1200, 900, 'image/png', 900 + seed)));
  });

  afterEach(async () => {
    await killAll();
    try {
      await server?.close();
      await proxy?.close();
      await s3?.close();
    } finally {
      restoreEnv();
      restoreEnv = () => undefined;
      server = null;
      proxy = null;
      s3 = null;
      await dirs?.remove();
      dirs = null;
    }
  });

  async function start(
    overrides: Partial<Pick<ControllerConfig, 'publicApiUrl' | 'imageStore'>> = {},
  ): Promise<{ server: Server; client: TestClient; controllerPort: number }> {
    dirs = await makeDirs();
    const started = await startTestServer(dirs, { leaseMs: LEASE_MS, heartbeatMs: HEARTBEAT_MS, ...overrides });
    server = started.server;
    return {
      server: started.server,
      client: await TestClient.login(started.url, 'alice', 'alice-pw'),
      controllerPort: started.config.controller.port,
    };
  }

  function registered(target: Server, names: string[]): Promise<boolean> {
    return waitFor(
      `workers ${names.join(', ')} to register`,
      async () => names.every((name) => liveWorker(target, name)?.state === 'alive'),
      30_000,
      20,
    );
  }

  for (const store of ['local', 's3'] as const)
    it(
      `SIGKILL mid-job (${store} image store): its jobs are requeued within the lease of its last heartbeat, ` +
        'and the workload completes on the others, one result per original',
      async () => {
        s3 = store === 's3' ? await startS3Server() : null;
        if (s3) restoreEnv = setEnv(s3.env);
        const {
          server: s,
          client,
          controllerPort,
        } = await start(s3 ? { imageStore: { kind: 's3', ...storeConfigFor(s3) } } : {});
        const env = s3?.env ?? {};
        const victim = spawnWorker({ controllerPort, name: 'victim', engine: 'jimp', slots: 1, env });
        spawnWorker({ controllerPort, name: 'survivor', engine: 'jimp', slots: 2, env });
        await registered(s, ['victim', 'survivor']);
        const workload = await client.createWorkload({ filter: 'grayscale' });
        await uploadAll(client, workload.workload_id, images);

        const victimId = liveWorker(s, 'victim')!.record.id;
        const held = await waitForRunningJob(s, victimId);
        const killedAt = Date.now();
        await victim.kill('SIGKILL');
        const requeuedAt = await waitForRelease(s, victimId, held, LEASE_MS + 10_000);
        const lastHeartbeat = s.controller.workers.get(victimId)!.last_seen;
        const requeuedAfter = requeuedAt - lastHeartbeat;

        const done = await client.waitForCompletion(workload.workload_id, 90_000);
        const completedAt = Date.now();
        console.log(
          `  recovery: SIGKILL worker -> ${held.length} job(s) requeued ` +
            `${seconds(requeuedAfter)} s after its last heartbeat ` +
            `(${seconds(requeuedAt - killedAt)} s after the kill; ` +
            `lease ${seconds(LEASE_MS)} s); workload completed ${seconds(completedAt - killedAt)} s after the kill`,
        );
        expect(requeuedAfter, 'requeued within lease + 2 s of the last heartbeat').to.be.at.most(LEASE_MS + 2000);
        expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
        // the victim's jobs were done again, after the kill, by the survivor (a second attempt, unless the
        // controller found itself overloaded when the lease expired: then the lost run costs no attempt)
        for (const id of held) {
          const job = s.controller.store.data.jobs[id]!;
          expect(Date.parse(job.finished_at ?? ''), `the victim's job ${id} finished after the kill`).to.be.greaterThan(
            killedAt,
          );
          expect(job.attempts, `attempts of the victim's job ${id}`).to.be.at.least(1);
        }
        await expectExactlyOnce(s, client, workload.workload_id, IMAGE_COUNT);
        if (s3) {
          // in the bucket: the originals and the accepted results, nothing of the lost leases
          const prefix = `dpip-test/${workload.workload_name}/`;
          const keys = async (): Promise<string[]> => (await s3!.objectKeys()).filter((key) => key.startsWith(prefix));
          await waitFor("the lost leases' objects to go", async () => (await keys()).length === 2 * IMAGE_COUNT);
        }
      },
    );

  it(
    'SIGSTOP mid-job: its jobs are requeued and done by others; ' +
      'after SIGCONT its late results are discarded, never duplicated',
    async () => {
      proxy = new ObservingProxy();
      const proxyUrl = await proxy.listen();
      const { server: s, client, controllerPort } = await start({ publicApiUrl: proxyUrl });
      proxy.targetPort = s.api.port;
      // three sleepers, stopped at different moments of a job: right after downloading its original (it is
      // filtering), when its upload of the result arrives (the upload stays in flight until the job has moved
      // on), and when the API has answered its upload 201 (the job is done: before the worker learns so)
      const names = ['hang-filter', 'hang-upload', 'hang-done'] as const;
      const redone = ['hang-filter', 'hang-upload'] as const;
      type Sleeper = (typeof names)[number];
      const sleepers = Object.fromEntries(
        names.map((name) => [
          name,
          // no job waits on a sleeper beside the one it is stopped in (--prefetch 0): the requeue and the late
          // results below are those of that one job (the worker kill above runs with prefetch, the default)
          spawnWorkerProcess({
            controllerPort,
            name,
            engine: 'jimp',
            slots: 1,
            logLevel: 'info',
            args: ['--prefetch', '0'],
          }),
        ]),
      ) as Record<Sleeper, Spawned>;
      spawnWorker({ controllerPort, name: 'steady', engine: 'jimp', slots: 2 });
      await registered(s, [...names, 'steady']);

      interface Stop {
        at: number;
        workerId: string;
        jobs: string[];
        /** The job's result id when the sleeper stopped (set once its upload was answered 201). */
        filtered: (string | null)[];
      }
      const stops = new Map<Sleeper, Stop>();
      /** `job`: the job it is stopped in, when it no longer holds it (its result was accepted). */
      const stop = (name: Sleeper, job?: string): void => {
        if (stops.has(name)) return;
        sleepers[name].child.kill('SIGSTOP');
        const workerId = liveWorker(s, name)!.record.id;
        const jobs = job ? [job] : [...s.controller.jobs.heldBy(workerId)];
        stops.set(name, {
          at: Date.now(),
          workerId,
          jobs,
          filtered: jobs.map((id) => s.controller.store.data.jobs[id]!.filtered_image_id),
        });
      };
      const tokenOf = (name: string): string | undefined => liveWorker(s, name)?.token;
      // hang-upload's upload is in flight while it hangs: it reaches the API only once the job has moved on
      let uploadArrives = (): void => undefined;
      const uploadHeld = new Promise<void>((resolve) => (uploadArrives = resolve));
      proxy.onRequest = (request) => {
        if (
          request.method === 'POST' &&
          request.path.split('?', 1)[0] === '/images' &&
          request.token === tokenOf('hang-upload') &&
          !stops.has('hang-upload')
        ) {
          stop('hang-upload');
          return uploadHeld;
        }
      };
      proxy.onUpstreamAnswer = (request) => {
        // its upload is recorded, and it is stopped before it learns so
        if (request.method === 'POST' && request.status === 201 && request.token === tokenOf('hang-done')) {
          const job = new URL(request.path, 'http://worker').searchParams.get('job_id') ?? undefined;
          stop('hang-done', job);
        }
      };
      proxy.onAnswered = (request) => {
        if (request.method === 'GET' && request.status === 200 && request.token === tokenOf('hang-filter'))
          stop('hang-filter');
      };

      const workload = await client.createWorkload({ filter: 'grayscale' });
      await uploadAll(client, workload.workload_id, images);
      await waitFor('the sleepers to be stopped mid-job', async () => stops.size === names.length, 60_000, 20);

      // the answered upload completed hang-done's job: it is not requeued, and its result stands
      const early = stops.get('hang-done')!;
      expect(early.filtered[0], "hang-done's upload was recorded").to.be.a('string');
      const earlyJob = s.controller.store.data.jobs[early.jobs[0] ?? '']!;
      expect(earlyJob, "hang-done's job was done when it stopped").to.include({
        state: 'done',
        attempts: 1,
        filtered_image_id: early.filtered[0],
      });

      const requeued = new Map<Sleeper, number>();
      for (const name of redone) {
        const { at, workerId, jobs } = stops.get(name)!;
        expect(jobs, `${name} held a job when it was stopped`).to.have.length(1);
        const requeuedAt = await waitForRelease(s, workerId, jobs, LEASE_MS + 10_000);
        requeued.set(name, requeuedAt);
        if (name === 'hang-upload') uploadArrives();
        const lastHeartbeat = s.controller.workers.get(workerId)!.last_seen;
        console.log(
          `  recovery: SIGSTOP worker (${name}) -> job requeued ` +
            `${seconds(requeuedAt - lastHeartbeat)} s after its last heartbeat ` +
            `(${seconds(requeuedAt - at)} s after the stop)`,
        );
        expect(requeuedAt - lastHeartbeat, 'requeued within lease + 2 s of the last heartbeat').to.be.at.most(
          LEASE_MS + 2000,
        );
      }
      // the reassigned jobs are done by the steady worker before the sleepers wake
      const stolen = redone.flatMap((name) => stops.get(name)!.jobs);
      await waitFor(
        'the stolen jobs to be done by another worker',
        async () => stolen.every((id) => s.controller.store.data.jobs[id]?.state === 'done'),
        60_000,
        20,
      );
      for (const id of stolen)
        expect(s.controller.store.data.jobs[id]!.attempts, `job ${id} was done again`).to.be.at.least(2);
      const filteredBefore = new Map(
        [...stolen, ...early.jobs].map((id) => [id, s.controller.store.data.jobs[id]!.filtered_image_id]),
      );
      expect(s.controller.store.data.jobs[early.jobs[0]!], "hang-done's job was left alone").to.include({
        state: 'done',
        attempts: 1,
      });

      const wokeAt = Date.now();
      for (const sleeper of Object.values(sleepers)) sleeper.child.kill('SIGCONT');
      // each redone job's sleeper, awake, reaches the end of its stale job: the result is dropped (cancelled,
      // or the upload got 409) or its report is refused
      for (const name of redone) {
        const { jobs } = stops.get(name)!;
        const outcome = await waitFor(
          `${name} to give up its stale job`,
          async () =>
            logLines(sleepers[name].output()).find(
              (line) =>
                jobs.includes(String(line.job_id)) &&
                (line.msg === 'job dropped' || line.msg === 'result not accepted: the lease had moved on'),
            ),
          20_000,
          50,
        ).catch((error: unknown) => {
          throw new Error(
            `${String(error)}\njob ${jobs.join(', ')}: ${JSON.stringify(s.controller.store.data.jobs[jobs[0]!])}\n` +
              `${name} printed:\n${sleepers[name].output()}`,
          );
        });
        // the sleeper's first job is the stale one, and its one slot stays taken until the outcome is logged:
        // every upload it sent before that line was for the stale job
        const uploads = proxy.requests.filter(
          (request) =>
            request.method === 'POST' && request.token === tokenOf(name) && request.at <= Number(outcome.time),
        );
        for (const upload of uploads) {
          // accepted only while the sleeper still held the lease (its body was in before the stop); refused after
          const beforeRequeue = upload.answeredAt !== null && upload.answeredAt < requeued.get(name)!;
          expect(
            upload.status,
            `${name}: a stale upload answered ${beforeRequeue ? 'before' : 'after'} the requeue`,
          ).to.equal(beforeRequeue ? 201 : 409);
        }
        const reason =
          outcome.msg === 'job dropped'
            ? `dropped (${String(outcome.reason)})`
            : 'finished, but its late complete was not accepted';
        console.log(
          `  recovery: SIGCONT ${name} -> its stale job ${reason}, ${seconds(Date.now() - wokeAt)} s after waking; ` +
            `its upload for it answered ${JSON.stringify(uploads.map((request) => request.status))}`,
        );
      }
      await waitFor(
        'the sleepers to be alive again',
        async () => names.every((name) => liveWorker(s, name)?.state === 'alive'),
        10_000,
        50,
      );
      // hang-done, awake, has nothing left to do for its job: it sent its result once
      const doneUploads = proxy.requests.filter(
        (request) => request.method === 'POST' && request.token === tokenOf('hang-done') && request.at <= early.at,
      );
      expect(
        doneUploads.map((request) => request.status),
        'hang-done uploaded its result once',
      ).to.deep.equal([201]);
      console.log(
        `  recovery: SIGCONT hang-done -> its job stayed done with the result it uploaded before the stop ` +
          `(attempt ${s.controller.store.data.jobs[early.jobs[0]!]!.attempts})`,
      );

      await client.waitForCompletion(workload.workload_id, 60_000);
      // the late results changed nothing: same result ids, still one per original
      for (const [id, filtered] of filteredBefore)
        expect(s.controller.store.data.jobs[id]!.filtered_image_id).to.equal(filtered);
      await expectExactlyOnce(s, client, workload.workload_id, IMAGE_COUNT);
    },
  );

  it(
    'SIGTERM mid-job: the worker finishes its running job (or, past --drain-ms, hands it back), ' +
      'leaves, and exits 0; nothing is lost',
    async () => {
      const { server: s, client, controllerPort } = await start();
      const processes: Record<'drainer' | 'quitter', Spawned> = {
        drainer: spawnWorkerProcess({ controllerPort, name: 'drainer', engine: 'jimp', slots: 1 }),
        // too little drain time for its job: it must hand the job back
        quitter: spawnWorkerProcess({
          controllerPort,
          name: 'quitter',
          engine: 'jimp',
          slots: 1,
          args: ['--drain-ms', '20'],
        }),
      };
      await registered(s, ['drainer', 'quitter']);
      const workload = await client.createWorkload({ filter: 'grayscale' });
      // large images first: the running jobs are still far from done when the signal comes
      await uploadAll(client, workload.workload_id, [...large, ...images]);

      const ids = { drainer: liveWorker(s, 'drainer')!.record.id, quitter: liveWorker(s, 'quitter')!.record.id };
      const held = {
        drainer: await waitForRunningJob(s, ids.drainer),
        quitter: await waitForRunningJob(s, ids.quitter),
      };
      const termAt = Date.now();
      for (const worker of Object.values(processes)) worker.child.kill('SIGTERM');

      // while it drains, the drainer starts no new job (it declines the assignments it is still offered)
      let extra: string[] = [];
      const watch = setInterval(() => {
        for (const id of s.controller.jobs.heldBy(ids.drainer)) {
          if (!held.drainer.includes(id) && s.controller.store.data.jobs[id]?.state === 'running') extra.push(id);
        }
      }, 10);
      const exits = await Promise.all(
        (['drainer', 'quitter'] as const).map(async (name) => {
          const exit = await Promise.race([processes[name].exited, sleep(45_000).then(() => null)]);
          const states = held[name].map((id) => s.controller.store.data.jobs[id]!.state);
          return { name, exit, after: Date.now() - termAt, states };
        }),
      );
      clearInterval(watch);
      extra = [...new Set(extra)];

      for (const { name, exit, after, states } of exits) {
        console.log(
          `  recovery: SIGTERM worker (${name}) -> exited with code ${exit?.code} ` +
            `${seconds(after)} s after the signal; ` +
            `its running job was ${states.join(', ')} at exit`,
        );
        expect(exit, `${name} exits`).to.not.equal(null);
        expect(exit!.code, `${name} exit code\n${processes[name].output()}`).to.equal(0);
        expect(s.controller.store.data.workers[ids[name]]!.left_at, `${name} said goodbye`).to.be.a('string');
      }
      expect(extra, 'jobs the drainer took after SIGTERM').to.deep.equal([]);
      // the drainer finished its running job, once; a job waiting on it for its slot (--prefetch auto: 1 here)
      // was not started and went back; the quitter's jobs went back to the queue
      const drained = held.drainer.map((id) => s.controller.store.data.jobs[id]!);
      expect(
        drained.filter((job) => job.state === 'done' && job.attempts === 1),
        'the running job finished once',
      ).to.have.length.at.least(1);
      const handedBack = drained.filter((job) => job.state !== 'done');
      expect(handedBack.length, 'at most the one waiting job went back').to.be.at.most(1);
      // handed back with the goodbye at no cost: its attempt given back, no backoff
      for (const job of handedBack)
        expect([job.state, job.attempts], 'a waiting job went back').to.deep.equal(['queued', 0]);
      console.log(
        `  recovery: SIGTERM worker (drainer) -> ${handedBack.length} job(s) waiting on it went back unstarted`,
      );
      for (const id of held.quitter) expect(s.controller.store.data.jobs[id]!.state).to.equal('queued');

      spawnWorker({ controllerPort, name: 'finisher', engine: 'jimp', slots: 2 });
      const done = await client.waitForCompletion(workload.workload_id, 90_000);
      expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
      await expectExactlyOnce(s, client, workload.workload_id, IMAGE_COUNT + large.length);
    },
  );
});
