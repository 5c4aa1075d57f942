import { method, RpcError, RPC_UNAUTHORIZED, serveRpc, type RpcServer } from '../common/bus/index.js';
import type { Logger } from '../common/log.js';
import { LogThrottle } from '../common/log-throttle.js';
import {
  assignManyParamsSchema,
  assignParamsSchema,
  cancelParamsSchema,
  pingParamsSchema,
  WORKER_METHODS,
  type AcceptedManyResult,
  type AcceptedResult,
  type Assignment,
  type PingResult,
} from '../common/protocol.js';
import { sameSecret } from '../common/secrets.js';
import type { WorkerConfig } from './config.js';
import type { ControllerSession, Registered } from './controller-session.js';
import { freePort, urlHost } from './network.js';
import type { Slots } from './slots.js';

export interface SchedulerRpc {
  server: RpcServer;
  /** What the controller dials: the advertised host and the bound port. */
  address: string;
}

/** Binds the worker's REP socket, on which the scheduler calls assign, cancel and ping. */
export async function serveSchedulerRpc(
  config: WorkerConfig,
  advertiseHost: string,
  session: ControllerSession,
  slots: Slots,
  log: Logger,
): Promise<SchedulerRpc> {
  const badMessages = new LogThrottle();
  const onBadMessage = (reason: string): void => {
    if (badMessages.next()) log.warn({ reason, count: badMessages.count }, 'rejected a bad message on the bus');
  };

  /** Only the controller this worker is registered with may call: its calls carry the worker's token. */
  function registeredWith(token: string): Registered {
    const current = session.current;
    if (!current || !sameSecret(token, current.registration.token))
      throw new RpcError('not the controller this worker is registered with', RPC_UNAUTHORIZED);
    return current;
  }

  /** Takes the job if a slot (or room beyond them) and the memory budget allow. */
  function take(params: Assignment, { api, registration }: Registered): boolean {
    if (!slots.accepts(params)) return false;
    slots.start(params, api, registration.max_pixels);
    return true;
  }

  const methods = {
    [WORKER_METHODS.assign]: method(
      assignParamsSchema,
      (params): AcceptedResult => ({ accepted: take(params, registeredWith(params.token)) }),
    ),
    [WORKER_METHODS.assignMany]: method(assignManyParamsSchema, ({ token, jobs }): AcceptedManyResult => {
      const registered = registeredWith(token);
      return { accepted: jobs.map((job) => take({ ...job, token }, registered)) };
    }),
    [WORKER_METHODS.cancel]: method(cancelParamsSchema, (params): AcceptedResult => {
      registeredWith(params.token);
      return { accepted: slots.cancel(params.job_id) };
    }),
    [WORKER_METHODS.ping]: method(pingParamsSchema, (params): PingResult => {
      registeredWith(params.token);
      return { name: config.name, running: slots.running, slots: config.slots };
    }),
  };

  for (let attempt = 0; ; attempt++) {
    const port = config.rpcPort || (await freePort());
    try {
      const server = serveRpc(`tcp://*:${port}`, methods, onBadMessage);
      return { server, address: `tcp://${urlHost(advertiseHost)}:${port}` };
    } catch (error) {
      // a free port can be taken between the probe and the bind
      if (config.rpcPort || attempt >= 5) throw error;
    }
  }
}
