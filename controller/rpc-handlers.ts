import { randomUUID } from 'node:crypto';
import { sameSecret } from '../common/secrets.js';
import { method, RpcError, RPC_UNAUTHORIZED, type RpcMethod } from '../common/bus/index.js';
import {
  CONTROLLER_METHODS,
  failParamsSchema,
  goodbyeParamsSchema,
  heartbeatParamsSchema,
  registerParamsSchema,
  type AcceptedResult,
  type HeartbeatResult,
  type LeaseRef,
  type RegisterResult,
} from '../common/protocol.js';
import type { Logger } from '../common/log.js';
import type { z } from 'zod';
import { sessionPortOf, type ControllerConfig } from './config.js';
import type { JobBook } from './job-book.js';
import type { Store, WorkerRecord } from './store/index.js';
import type { StoreHealth } from './store-health.js';
import type { Tokens } from './tokens.js';
import type { LiveWorker, WorkerRegistry } from './workers/index.js';

interface Deps {
  config: ControllerConfig;
  store: Store;
  tokens: Tokens;
  registry: WorkerRegistry;
  jobs: JobBook;
  /** The identity of the images folder workers on this machine can use by path; null: none. */
  folderId: string | null;
  health: StoreHealth;
  log: Logger;
}

/** How long a worker that could not reach the image store gets no job: it would likely fail the same way. */
const STORE_TROUBLE_REST_MS = 2000;

/**
 * The controller's JSON-RPC methods, called by workers: `register` on the registration socket, the others on the
 * session socket (the registration socket answers them too, for workers from before the session socket).
 */
export function controllerMethods(deps: Deps): Record<string, RpcMethod<z.ZodType, unknown>> {
  const { config, store, tokens, registry, jobs, folderId, health, log } = deps;

  function workerOf(token: string): LiveWorker | null {
    const claims = tokens.verify(token);
    if (claims?.scope !== 'worker')
      throw new RpcError('invalid or expired worker token: register again', RPC_UNAUTHORIZED);
    const worker = registry.get(claims.sub);
    return worker && worker.state !== 'left' && worker.token === token ? worker : null;
  }

  function renewHeld(worker: LiveWorker, running: LeaseRef[]): string[] {
    const cancel: string[] = [];
    for (const ref of running) {
      const renewal = jobs.renew(ref.job_id, worker.record.id, ref.lease_id);
      if (renewal.ok) continue;
      log.debug(
        { job_id: ref.job_id, worker: worker.record.name, reason: renewal.refusal },
        'lease not renewed: cancel',
      );
      cancel.push(ref.job_id);
    }
    return cancel;
  }

  return {
    [CONTROLLER_METHODS.register]: method(registerParamsSchema, async (params): Promise<RegisterResult> => {
      if (!sameSecret(params.secret, config.clusterSecret)) {
        throw new RpcError('wrong cluster secret', RPC_UNAUTHORIZED);
      }
      const now = Date.now();
      const existing = registry.byName(params.name);
      const fields = {
        tags: params.tags,
        rpc_address: params.rpc_address,
        slots: params.slots,
        engine: params.engine,
        filters: params.filters,
        ...(params.operations ? { operations: params.operations } : {}),
        ...(params.formats ? { formats: params.formats } : {}),
      };
      let worker: LiveWorker;
      if (existing && existing.record.instance_id === params.instance_id) {
        worker = existing;
        store.change('workers', worker.record.id);
        Object.assign(worker.record, fields);
        // an expired token: a fresh one
        if (!tokens.verify(worker.token)) worker.token = await newToken(worker.record);
        registry.registeredAgain(worker, params.resources, now);
      } else {
        if (existing?.state === 'alive') {
          throw new RpcError(
            `worker name "${params.name}" is in use by a live worker: pick another --worker-name`,
            -32002,
          );
        }
        if (existing) retire(existing, 'replaced by a new worker process of the same name');
        // a worker process known from before a server restart keeps its id, so the leases it holds stay valid
        const known = Object.values(store.data.workers).find(
          (record) => record.instance_id === params.instance_id && record.name === params.name && !record.left_at,
        );
        if (known) store.change('workers', known.id);
        const record: WorkerRecord = known
          ? Object.assign(known, fields)
          : {
              id: randomUUID(),
              name: params.name,
              instance_id: params.instance_id,
              ...fields,
              registered_at: new Date(now).toISOString(),
              left_at: null,
            };
        if (!known) store.change('workers', record.id);
        store.data.workers[record.id] = record;
        // earlier processes of this name (from before a restart: the registry knew none) hold no token any more
        for (const other of Object.values(store.data.workers)) {
          if (other.name === record.name && other.id !== record.id) await revokeHeld(other);
        }
        worker = registry.add(record, await newToken(record), params.resources, now);
        log.info(
          {
            worker: record.name,
            worker_id: record.id,
            address: record.rpc_address,
            tags: record.tags,
            slots: record.slots,
            known: !!known,
          },
          'worker registered',
        );
      }
      worker.sees_images = folderId !== null && params.images_dir_id === folderId;
      worker.prefetch = params.prefetch ?? 0;
      worker.assign_many = params.assign_many === true;
      renewHeld(worker, params.running);
      await store.commit();
      jobs.poke();
      return {
        worker_id: worker.record.id,
        token: worker.token,
        api_url: config.publicApiUrl,
        api_port: config.apiPort,
        heartbeat_ms: config.heartbeatMs,
        lease_ms: config.leaseMs,
        ...(config.maxPixels === undefined ? {} : { max_pixels: config.maxPixels }),
        session_port: sessionPortOf(config),
        results_together: true,
      };
    }),

    [CONTROLLER_METHODS.heartbeat]: method(heartbeatParamsSchema, (params): HeartbeatResult => {
      const worker = workerOf(params.token);
      if (!worker) return { known: false, cancel: [] };
      const wasDead = worker.state === 'dead';
      registry.heard(worker, params.resources, Date.now());
      worker.waiting = new Set(params.waiting);
      if (params.prefetch !== undefined && params.prefetch !== worker.prefetch) {
        const more = params.prefetch > worker.prefetch;
        worker.prefetch = params.prefetch;
        if (more) jobs.poke();
      }
      if (wasDead) {
        log.info({ worker: worker.record.name }, 'worker is back');
        jobs.poke();
      }
      return { known: true, cancel: renewHeld(worker, params.running) };
    }),

    [CONTROLLER_METHODS.fail]: method(failParamsSchema, async (params): Promise<AcceptedResult> => {
      const worker = workerOf(params.token);
      if (!worker) return { accepted: false };
      if (params.store_unavailable) return storeTrouble(worker, params.job_id, params.lease_id, params.error);
      const failure = jobs.fail(params.job_id, worker.record.id, params.lease_id, params.error, params.retryable);
      if (!failure.ok) {
        log.info(
          { job_id: params.job_id, worker: worker.record.name, reason: failure.refusal },
          'failure report refused',
        );
        return { accepted: false };
      }
      const { job } = failure;
      log.warn({ job_id: job.id, worker: worker.record.name, error: params.error, state: job.state }, 'job failed');
      await store.commit();
      return { accepted: true };
    }),

    [CONTROLLER_METHODS.goodbye]: method(goodbyeParamsSchema, async (params): Promise<AcceptedResult> => {
      const worker = workerOf(params.token);
      if (!worker) return { accepted: false };
      // taken beyond its slots and never started: back to the queue at no cost (compare-and-set on the lease)
      for (const { job_id, lease_id } of params.unstarted ?? [])
        jobs.release(job_id, worker.record.id, lease_id, 'handed back unstarted by a leaving worker', false);
      retire(worker, 'worker left');
      log.info({ worker: worker.record.name }, 'worker left');
      await store.commit();
      return { accepted: true };
    }),
  };

  /**
   * The worker could not reach the image store: not the job's fault. The job goes back at no cost, the
   * worker rests a moment, and the store is probed: if it is down for the server too, no job is given out
   * until it answers.
   */
  async function storeTrouble(
    worker: LiveWorker,
    jobId: string,
    leaseId: string,
    error: string,
  ): Promise<AcceptedResult> {
    const release = jobs.release(jobId, worker.record.id, leaseId, `the image store was unavailable: ${error}`, false);
    if (!release.ok) return { accepted: false };
    log.warn({ job_id: jobId, worker: worker.record.name, error }, 'a worker could not reach the image store');
    registry.rest(worker.record.id, Date.now() + STORE_TROUBLE_REST_MS);
    health.suspect(`worker ${worker.record.name}: ${error}`);
    await store.commit();
    return { accepted: true };
  }

  /**
   * A new token for the record. The one it held is revoked: after a restart a worker registers again and
   * gets a new token, and the old one would otherwise stay valid on HTTP until it expires.
   */
  async function newToken(record: WorkerRecord): Promise<string> {
    const { token, claims } = tokens.issue(record.id, 'worker');
    await revokeHeld(record);
    store.change('workers', record.id);
    record.token = { jti: claims.jti, expires_at: claims.exp * 1000 };
    return token;
  }

  /** Revokes the token the record holds, if any (the revocation list is in the datastore). */
  async function revokeHeld(record: WorkerRecord): Promise<void> {
    const held = record.token;
    if (!held) return;
    store.change('workers', record.id);
    record.token = null;
    await tokens.revoke({ jti: held.jti, exp: Math.ceil(held.expires_at / 1000) });
  }

  function retire(worker: LiveWorker, reason: string): void {
    void revokeHeld(worker.record);
    registry.leave(worker, Date.now());
    store.change('workers', worker.record.id);
    worker.record.left_at = new Date().toISOString();
    jobs.releaseAll(worker.record.id, reason, true, worker.waiting);
    registry.remove(worker.record.id);
  }
}
