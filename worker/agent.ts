import { randomUUID } from 'node:crypto';
import { sameSecret } from '../common/secrets.js';
import { FILTER_NAMES } from '../common/filters/index.js';
import {
  connectRpc,
  method,
  RpcError,
  RPC_UNAUTHORIZED,
  serveRpc,
  subscribe,
  type RpcClient,
  type RpcServer,
  type Subscriber,
} from '../common/bus/index.js';
import type { Logger } from '../common/log.js';
import {
  ANNOUNCE,
  acceptedResultSchema,
  announceSchema,
  assignParamsSchema,
  cancelParamsSchema,
  CONTROLLER_METHODS,
  heartbeatResultSchema,
  pingParamsSchema,
  registerResultSchema,
  WORKER_METHODS,
  type AcceptedResult,
  type AssignParams,
  type PingResult,
  type RegisterParams,
  type RegisterResult,
  type LeaseRef,
} from '../common/protocol.js';
import { ApiClient } from './api-client.js';
import type { WorkerConfig } from './config.js';
import { createEngine, type FilterEngine } from './engines/index.js';
import { runJob, type JobOutcome } from './job-runner.js';
import { freePort, localAddressToward } from './network.js';
import { ResourceMonitor } from './resources.js';

interface RunningJob {
  params: AssignParams;
  abort: AbortController;
  done: Promise<void>;
}

interface Session {
  registration: RegisterResult;
  api: ApiClient;
}

export interface WorkerAgent {
  readonly name: string;
  /** Stop taking work, let running jobs finish (up to drainMs, default --drain-ms), hand back the rest, leave. */
  stop(drainMs?: number): Promise<void>;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
/** An announcement after this long a silence means the controller has (re)appeared. */
const SILENCE_MS = 2500;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function jittered(ms: number): number {
  return Math.round(ms / 2 + Math.random() * (ms / 2));
}

export async function startWorker(config: WorkerConfig, log: Logger): Promise<WorkerAgent> {
  const instanceId = randomUUID();
  const engine: FilterEngine = await createEngine(config.engine, config.slots);
  const monitor = new ResourceMonitor();
  await monitor.start(1000);
  const advertiseHost =
    config.advertiseHost ?? (await localAddressToward(config.controllerHost, config.controllerPort));
  const running = new Map<string, RunningJob>();
  /** Running jobs whose result upload is in flight. */
  const finishing = new Set<string>();
  /** Jobs whose work is done and whose result is being reported: their leases still need renewing. */
  const reporting = new Map<string, LeaseRef>();
  let session: Session | null = null;
  let registerEndpoint: string | null = null;
  let controllerRpc: RpcClient | null = null;
  let stopping = false;

  let badMessages = 0;
  const rpcServer = await bindRpcServer();
  const rpcAddress = `tcp://${advertiseHost.includes(':') ? `[${advertiseHost}]` : advertiseHost}:${rpcServer.port}`;
  log.info({ worker: config.name, engine: engine.name, slots: config.slots, rpc: rpcAddress }, 'worker started');

  async function bindRpcServer(): Promise<{ server: RpcServer; port: number }> {
    for (let attempt = 0; ; attempt++) {
      const port = config.rpcPort || (await freePort());
      try {
        const server = serveRpc(`tcp://*:${port}`, workerMethods(), (reason) => {
          badMessages += 1;
          // the first and then every 1000th: a flood of garbage must not flood the log
          if (badMessages === 1 || badMessages % 1000 === 0)
            log.warn({ reason, count: badMessages }, 'rejected a bad message on the bus');
        });
        return { server, port };
      } catch (error) {
        if (config.rpcPort || attempt >= 5) throw error;
      }
    }
  }

  function checkToken(token: string): void {
    if (!session || !sameSecret(token, session.registration.token))
      throw new RpcError('not the controller this worker is registered with', RPC_UNAUTHORIZED);
  }

  function workerMethods() {
    return {
      [WORKER_METHODS.assign]: method(assignParamsSchema, (params): AcceptedResult => {
        checkToken(params.token);
        // a job whose result is being uploaded holds no slot: the controller counts it done as soon as it
        // answers that upload, and may offer the next job before this worker has read the answer
        if (stopping || running.size - finishing.size >= config.slots || running.has(params.job_id))
          return { accepted: false };
        start(params);
        return { accepted: true };
      }),
      [WORKER_METHODS.cancel]: method(cancelParamsSchema, (params): AcceptedResult => {
        checkToken(params.token);
        const job = running.get(params.job_id);
        job?.abort.abort();
        return { accepted: !!job };
      }),
      [WORKER_METHODS.ping]: method(pingParamsSchema, (params): PingResult => {
        checkToken(params.token);
        return { name: config.name, running: running.size, slots: config.slots };
      }),
    };
  }

  function start(params: AssignParams): void {
    const abort = new AbortController();
    const current = session!;
    const entry: RunningJob = { params, abort, done: Promise.resolve() };
    running.set(params.job_id, entry);
    // the slot frees as soon as the work is done: the controller may assign the next job while the report is in flight
    const uploading = (): void => void finishing.add(params.job_id);
    entry.done = runJob(
      params,
      current.api,
      engine,
      abort.signal,
      log.child({ job_id: params.job_id }),
      uploading,
    ).then(async (outcome) => {
      running.delete(params.job_id);
      finishing.delete(params.job_id);
      reporting.set(params.job_id, { job_id: params.job_id, lease_id: params.lease_id });
      try {
        await report(params, outcome);
      } finally {
        reporting.delete(params.job_id);
      }
    });
  }

  /** A failure must arrive: retried until the controller answers or the lease is surely gone. */
  async function report(params: AssignParams, outcome: JobOutcome): Promise<void> {
    if (outcome.kind === 'dropped') {
      log.info({ job_id: params.job_id, reason: outcome.reason }, 'job dropped');
      return;
    }
    // the answered upload of the filtered image was the completion: nothing is left to report
    if (outcome.kind === 'done') return;
    if (outcome.kind === 'failed')
      log.warn({ job_id: params.job_id, error: outcome.error, retryable: outcome.retryable }, 'job failed');
    for (let delay = RETRY_MIN_MS; !stoppedHard; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      const token = session?.registration.token;
      if (token && controllerRpc) {
        try {
          const result = await controllerRpc.call(
            CONTROLLER_METHODS.fail,
            {
              token,
              job_id: params.job_id,
              lease_id: params.lease_id,
              error: outcome.error,
              retryable: outcome.retryable,
            },
            acceptedResultSchema,
          );
          if (!result.accepted) log.info({ job_id: params.job_id }, 'result not accepted: the lease had moved on');
          return;
        } catch (error) {
          log.debug({ job_id: params.job_id, error: String(error) }, 'report failed, retrying');
        }
      }
      await sleep(jittered(delay));
    }
  }

  function heldLeases(): LeaseRef[] {
    return [
      ...[...running.values()].map((job) => ({ job_id: job.params.job_id, lease_id: job.params.lease_id })),
      ...reporting.values(),
    ];
  }

  function registerParams(): RegisterParams {
    return {
      secret: config.secret,
      name: config.name,
      instance_id: instanceId,
      tags: config.tags,
      rpc_address: rpcAddress,
      slots: config.slots,
      engine: engine.name,
      filters: [...FILTER_NAMES],
      resources: monitor.current(),
      running: heldLeases(),
    };
  }

  let stoppedHard = false;
  /** Ends the registration backoff now, while one is being waited out. */
  let wakeUp: (() => void) | null = null;
  let lastAnnouncement = 0;

  /** The wait between registration attempts: a timer, cut short when the controller (re)appears. */
  function backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        if (wakeUp === finish) wakeUp = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      wakeUp = finish;
    });
  }

  const subscriber: Subscriber = subscribe(
    `tcp://${config.controllerHost}:${config.controllerPort}`,
    (kind, params) => {
      if (kind !== ANNOUNCE) return;
      const parsed = announceSchema.safeParse(params);
      if (!parsed.success) return;
      const now = Date.now();
      const reappeared = now - lastAnnouncement > SILENCE_MS;
      lastAnnouncement = now;
      const endpoint = `tcp://${config.controllerHost}:${parsed.data.register_port}`;
      if (endpoint !== registerEndpoint) {
        registerEndpoint = endpoint;
        controllerRpc?.close();
        controllerRpc = connectRpc(endpoint, 3000);
        log.info({ controller: endpoint, system: parsed.data.system_name }, 'heard the controller');
      }
      // the controller came up (or back) while this worker waits out a long backoff: register now, not up
      // to RETRY_MAX_MS later. Only after a silence, so a controller that announces but refuses or does
      // not answer registrations still gets the full backoff.
      if (reappeared && !session) wakeUp?.();
    },
  );

  /** Register, then heartbeat; on any loss of the controller, back off and register again. */
  async function lifecycle(): Promise<void> {
    let delay = RETRY_MIN_MS;
    let waitingLogged = false;
    while (!stoppedHard) {
      if (!controllerRpc || !session) {
        if (controllerRpc) {
          try {
            const registration = await controllerRpc.call(
              CONTROLLER_METHODS.register,
              registerParams(),
              registerResultSchema,
            );
            const apiUrl =
              registration.api_url ??
              `http://${config.controllerHost.includes(':') ? `[${config.controllerHost}]` : config.controllerHost}:${registration.api_port}`;
            session = { registration, api: new ApiClient(apiUrl, () => session?.registration.token ?? '') };
            log.info({ worker_id: registration.worker_id, api: apiUrl }, 'registered');
            delay = RETRY_MIN_MS;
            waitingLogged = false;
            continue;
          } catch (error) {
            if (!waitingLogged) log.warn({ error: String(error) }, 'registration failed: retrying with backoff');
            waitingLogged = true;
          }
        } else if (!waitingLogged) {
          log.info({ controller: `${config.controllerHost}:${config.controllerPort}` }, 'waiting for the controller');
          waitingLogged = true;
        }
        await backoff(jittered(delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      try {
        const reply = await controllerRpc.call(
          CONTROLLER_METHODS.heartbeat,
          {
            token: session.registration.token,
            resources: monitor.current(),
            running: heldLeases(),
          },
          heartbeatResultSchema,
          Math.max(1000, session.registration.lease_ms - session.registration.heartbeat_ms),
        );
        if (!reply.known) {
          log.info('the controller does not know this worker (restarted?): registering again');
          session = null;
          continue;
        }
        // a result on its way is not cancelled: the upload's answer (201, or 409 when the lease moved on) settles it
        for (const jobId of reply.cancel) if (!finishing.has(jobId)) running.get(jobId)?.abort.abort();
        await sleep(session.registration.heartbeat_ms);
      } catch (error) {
        log.warn({ error: String(error) }, 'heartbeat failed: registering again');
        session = null;
        await backoff(jittered(delay));
      }
    }
  }
  void lifecycle();

  return {
    name: config.name,
    async stop(drainMs = config.drainMs) {
      if (stopping) return;
      stopping = true;
      const drained = Promise.all([...running.values()].map((job) => job.done));
      const timedOut = await Promise.race([drained.then(() => false), sleep(drainMs).then(() => true)]);
      if (timedOut) for (const job of running.values()) job.abort.abort();
      const token = session?.registration.token;
      if (token && controllerRpc) {
        await controllerRpc
          .call(CONTROLLER_METHODS.goodbye, { token }, acceptedResultSchema, 2000)
          .catch(() => undefined);
      }
      stoppedHard = true;
      subscriber.close();
      controllerRpc?.close();
      rpcServer.server.close();
      monitor.stop();
      await engine.close();
      log.info('worker stopped');
    },
  };
}
