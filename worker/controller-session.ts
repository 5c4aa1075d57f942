import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, type BackoffPolicy } from '../common/backoff.js';
import { connectRpc, subscribe, type RpcClient, type Subscriber } from '../common/bus/index.js';
import { FILTER_NAMES } from '../common/filters/index.js';
import type { Logger } from '../common/log.js';
import {
  ANNOUNCE,
  acceptedResultSchema,
  announceSchema,
  CONTROLLER_METHODS,
  heartbeatResultSchema,
  registerResultSchema,
  STORE_ID_FILE,
  type LeaseRef,
  type RegisterParams,
  type RegisterResult,
} from '../common/protocol.js';
import { ApiClient } from './api-client.js';
import type { WorkerConfig } from './config.js';
import type { EngineCapabilities, EngineName } from './engines/index.js';
import { urlHost } from './network.js';
import type { ResourceMonitor } from './resources.js';

/** Retries of calls to the controller (registration, failure reports): 250 ms doubling up to 10 s. */
export const CONTROLLER_RETRY: BackoffPolicy = { baseMs: 250, maxMs: 10_000 };
/** An announcement after this long a silence means the controller has (re)appeared. */
const SILENCE_MS = 2500;
/** The longest identity of an images folder the protocol carries (registerParamsSchema.images_dir_id). */
const MAX_IMAGES_DIR_ID = 200;

/**
 * The identity of the images folder at `imagesDir`: its STORE_ID_FILE, trimmed. Null when the file cannot be
 * read, or holds nothing or more than the protocol carries; `problem` then says why.
 */
export async function readImagesDirId(imagesDir: string): Promise<{ id: string } | { id: null; problem: string }> {
  const file = path.join(imagesDir, STORE_ID_FILE);
  let content: string;
  try {
    content = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    return { id: null, problem: `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (content === '') return { id: null, problem: `${file} is empty` };
  if (content.length > MAX_IMAGES_DIR_ID)
    return { id: null, problem: `${file} holds more than ${MAX_IMAGES_DIR_ID} characters` };
  return { id: content };
}

export interface Registered {
  registration: RegisterResult;
  api: ApiClient;
}

/** What the worker tells the controller about itself beyond its config, and what it hears back. */
export interface SessionPeer {
  rpcAddress: string;
  engine: EngineName;
  /** What the engine can run: told at registration, so that the scheduler sends only chains it can. */
  capabilities: EngineCapabilities;
  monitor: ResourceMonitor;
  jobs: {
    heldLeases(): LeaseRef[];
    /** The jobs a heartbeat's answer says this worker lost. */
    leasesLost(jobIds: readonly string[]): void;
  };
}

/**
 * The worker's side of the registration handshake and of heartbeats (architecture.md): hears the
 * controller's announcements, registers, heartbeats, and registers again whenever the controller is lost.
 */
export class ControllerSession {
  /** New at each start: tells the controller this process registering again from another one of the same name. */
  private readonly instanceId = randomUUID();
  /** Set while this worker is registered. */
  current: Registered | null = null;
  /** The controller's registration socket, known from its announcements. */
  rpc: RpcClient | null = null;
  /**
   * The controller's session socket (heartbeat, fail, goodbye), known from the register reply; the registration
   * socket for a controller that names none.
   */
  private sessionClient: RpcClient | null = null;
  closed = false;
  private registerEndpoint: string | null = null;
  private subscriber: Subscriber | null = null;
  /** Ends the registration backoff now, while one is being waited out. */
  private wakeUp: (() => void) | null = null;
  private lastAnnouncement = 0;
  /** What the last registration read of the images folder's identity: its id, or why there was none. */
  private imagesDirSeen: string | null = null;

  constructor(
    private readonly config: WorkerConfig,
    private readonly log: Logger,
  ) {}

  get token(): string | undefined {
    return this.current?.registration.token;
  }

  /** Where heartbeat, fail and goodbye go while registered. */
  get session(): RpcClient | null {
    return this.current ? (this.sessionClient ?? this.rpc) : null;
  }

  start(peer: SessionPeer): void {
    const announcements = `tcp://${this.config.controllers[0].host}:${this.config.controllers[0].port}`;
    this.subscriber = subscribe(announcements, (kind, params) => this.heard(kind, params));
    void this.lifecycle(peer);
  }

  /** Tells the controller this worker leaves, if it is registered; an unanswered goodbye is not waited for long. */
  async goodbye(): Promise<void> {
    const token = this.token;
    const session = this.session;
    if (token && session) {
      await session.call(CONTROLLER_METHODS.goodbye, { token }, acceptedResultSchema, 2000).catch(() => undefined);
    }
  }

  close(): void {
    this.closed = true;
    this.subscriber?.close();
    this.rpc?.close();
    this.sessionClient?.close();
  }

  private heard(kind: string, params: unknown): void {
    if (kind !== ANNOUNCE) return;
    const parsed = announceSchema.safeParse(params);
    if (!parsed.success) return;
    const now = Date.now();
    const reappeared = now - this.lastAnnouncement > SILENCE_MS;
    this.lastAnnouncement = now;
    const endpoint = `tcp://${this.config.controllers[0].host}:${parsed.data.register_port}`;
    if (endpoint !== this.registerEndpoint) {
      this.registerEndpoint = endpoint;
      this.rpc?.close();
      this.rpc = connectRpc(endpoint, 3000);
      this.sessionClient?.close();
      this.sessionClient = null;
      this.log.info({ controller: endpoint, system: parsed.data.system_name }, 'heard the controller');
    }
    // the controller came up (or back) while this worker waits out a long backoff: register now, not up
    // to CONTROLLER_RETRY.maxMs later. Only after a silence, so a controller that announces but refuses or
    // does not answer registrations still gets the full backoff.
    if (reappeared && !this.current) this.wakeUp?.();
  }

  /** Register, then heartbeat; on any loss of the controller, back off and register again. */
  private async lifecycle(peer: SessionPeer): Promise<void> {
    let attempt = 1;
    let waitingLogged = false;
    while (!this.closed) {
      const session = this.session;
      if (session && this.current) {
        try {
          await this.heartbeat(session, this.current, peer);
        } catch (error) {
          this.log.warn({ error: String(error) }, 'heartbeat failed: registering again');
          this.current = null;
          await this.backoff(backoffMs(CONTROLLER_RETRY, attempt));
        }
        continue;
      }
      if (this.rpc) {
        try {
          await this.register(this.rpc, peer);
          attempt = 1;
          waitingLogged = false;
          continue;
        } catch (error) {
          // a refused secret read from the data dir: the server may have been given another one (--secret)
          const from = this.config.secretFile ? { secret_from: this.config.secretFile } : {};
          if (!waitingLogged)
            this.log.warn({ error: String(error), ...from }, 'registration failed: retrying with backoff');
          waitingLogged = true;
        }
      } else if (!waitingLogged) {
        const controller = `${this.config.controllers[0].host}:${this.config.controllers[0].port}`;
        this.log.info({ controller }, 'waiting for the controller');
        waitingLogged = true;
      }
      await this.backoff(backoffMs(CONTROLLER_RETRY, attempt));
      attempt += 1;
    }
  }

  private async register(rpc: RpcClient, peer: SessionPeer): Promise<void> {
    const params = await this.registerParams(peer);
    const registration = await rpc.call(CONTROLLER_METHODS.register, params, registerResultSchema);
    const apiUrl =
      registration.api_url ?? `http://${urlHost(this.config.controllers[0].host)}:${registration.api_port}`;
    this.useSessionPort(registration.session_port);
    this.current = { registration, api: new ApiClient(apiUrl, () => this.token ?? '', this.config.httpTimeouts) };
    this.log.info({ worker_id: registration.worker_id, api: apiUrl }, 'registered');
  }

  private async registerParams(peer: SessionPeer): Promise<RegisterParams> {
    const imagesDirId = await this.imagesDirId();
    return {
      secret: this.config.secret,
      name: this.config.name,
      instance_id: this.instanceId,
      tags: this.config.tags,
      rpc_address: peer.rpcAddress,
      slots: this.config.slots,
      engine: peer.engine,
      filters: [...FILTER_NAMES],
      operations: [...peer.capabilities.operations],
      formats: [...peer.capabilities.formats],
      resources: peer.monitor.current(),
      running: peer.jobs.heldLeases(),
      ...(imagesDirId === null ? {} : { images_dir_id: imagesDirId }),
    };
  }

  /**
   * The identity of the images folder (--images-dir), read at each registration: the controller compares it
   * with its own. Without it the worker's bytes go through the API. Logged when it changes, not each time.
   */
  private async imagesDirId(): Promise<string | null> {
    const dir = this.config.imagesDir;
    if (dir === null) return null;
    const read = await readImagesDirId(dir);
    const seen = read.id === null ? `problem: ${read.problem}` : `id: ${read.id}`;
    if (seen !== this.imagesDirSeen) {
      this.imagesDirSeen = seen;
      if (read.id === null)
        this.log.info(
          { images_dir: dir, reason: read.problem },
          'the images folder has no identity this worker can read: its bytes go through the API',
        );
      else this.log.info({ images_dir: dir, images_dir_id: read.id }, 'read the identity of the images folder');
    }
    return read.id;
  }

  /** Opens the client to the session socket the controller named, unless it is the one already open. */
  private useSessionPort(port: number | undefined): void {
    const endpoint = port === undefined ? null : `tcp://${this.config.controllers[0].host}:${port}`;
    if (endpoint === (this.sessionClient?.address ?? null)) return;
    this.sessionClient?.close();
    this.sessionClient = endpoint === null ? null : connectRpc(endpoint, 3000);
    if (endpoint) this.log.info({ session: endpoint }, 'heartbeats go to the session socket');
  }

  /** One heartbeat, then the wait until the next. */
  private async heartbeat(rpc: RpcClient, { registration }: Registered, peer: SessionPeer): Promise<void> {
    const reply = await rpc.call(
      CONTROLLER_METHODS.heartbeat,
      { token: registration.token, resources: peer.monitor.current(), running: peer.jobs.heldLeases() },
      heartbeatResultSchema,
      Math.max(1000, registration.lease_ms - registration.heartbeat_ms),
    );
    if (!reply.known) {
      this.log.info('the controller does not know this worker (restarted?): registering again');
      this.current = null;
      return;
    }
    peer.jobs.leasesLost(reply.cancel);
    await sleep(registration.heartbeat_ms);
  }

  /** The wait between registration attempts: a timer, cut short when the controller (re)appears. */
  private backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === finish) this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wakeUp = finish;
    });
  }
}
