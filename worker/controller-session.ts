import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
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
  type Announcement,
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
/**
 * An announcement after this long a silence means the controller has (re)appeared; a controller followed that
 * has not announced for this long has gone silent, and the next one that announces is followed.
 */
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
    /** The jobs it takes beyond its slots now (--prefetch, or what auto makes of its jobs' length). */
    prefetchNow(): number;
    /** The lease ids of the held jobs waiting for a slot, never started. */
    waitingLeases(): string[];
    /** The jobs a heartbeat's answer says this worker lost. */
    leasesLost(jobIds: readonly string[]): void;
  };
}

/** A controller this worker listens to (one entry of --controller), and when it was last heard. */
interface Announcer {
  readonly host: string;
  readonly port: number;
  /** host:port, as the log shows it. */
  readonly address: string;
  /** When its last announcement came (ms since the epoch); 0: never. */
  lastHeard: number;
}

/**
 * The worker's side of the registration handshake and of heartbeats (architecture.md): hears the
 * controllers' announcements, follows the one that announces, registers with it, heartbeats, and registers
 * again whenever the controller is lost. Of several controllers (servers sharing one datastore, one of which
 * leads), it stays with the one it follows while that one announces and answers; when that one goes silent,
 * it follows the next one heard at once.
 */
export class ControllerSession {
  /** New at each start: tells the controller this process registering again from another one of the same name. */
  private readonly instanceId = randomUUID();
  /** Set while this worker is registered. */
  current: Registered | null = null;
  /** The controllers listened to, one per --controller entry. */
  private announcers: Announcer[] = [];
  private subscribers: Subscriber[] = [];
  /** The controller this worker registers (or is registered) with: the first that announced, then its successors. */
  private followed: Announcer | null = null;
  /**
   * A registration or heartbeat with the followed controller failed since it last registered: another
   * controller that announces is then followed, even though this one still announces.
   */
  private followedFailing = false;
  /**
   * Counts the times a controller was followed because none was, or the one followed had gone silent: the
   * worker then registers at once, without the backoff left from the one before.
   */
  private takeovers = 0;
  /** The followed controller's registration socket, known from its announcements. */
  private rpc: RpcClient | null = null;
  /**
   * The controller's session socket (heartbeat, fail, goodbye), known from the register reply; the registration
   * socket for a controller that names none.
   */
  private sessionClient: RpcClient | null = null;
  closed = false;
  /** Ends the wait under way (a registration backoff, the time between heartbeats) now. */
  private wakeUp: (() => void) | null = null;
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
    this.announcers = this.config.controllers.map(({ host, port }) => ({
      host,
      port,
      address: `${urlHost(host)}:${port}`,
      lastHeard: 0,
    }));
    this.subscribers = this.announcers.map((announcer) =>
      subscribe(`tcp://${announcer.host}:${announcer.port}`, (kind, params) => this.heard(announcer, kind, params)),
    );
    void this.lifecycle(peer);
  }

  /** Tells the controller this worker leaves, if it is registered; an unanswered goodbye is not waited for long. */
  /** Leaves; `unstarted`: the jobs it took and never started, which go back at no cost. */
  async goodbye(unstarted: LeaseRef[] = []): Promise<void> {
    const token = this.token;
    const session = this.session;
    if (token && session) {
      const params = { token, ...(unstarted.length > 0 ? { unstarted } : {}) };
      await session.call(CONTROLLER_METHODS.goodbye, params, acceptedResultSchema, 2000).catch(() => undefined);
    }
  }

  close(): void {
    this.closed = true;
    for (const subscriber of this.subscribers) subscriber.close();
    this.rpc?.close();
    this.sessionClient?.close();
  }

  private heard(from: Announcer, kind: string, params: unknown): void {
    if (kind !== ANNOUNCE) return;
    const parsed = announceSchema.safeParse(params);
    if (!parsed.success) return;
    const now = Date.now();
    const reappeared = now - from.lastHeard > SILENCE_MS;
    from.lastHeard = now;
    const followed = this.followed;
    if (from === followed) {
      this.useRegisterPort(from, parsed.data);
      // the controller came up (or back) while this worker waits out a long backoff: register now, not up
      // to CONTROLLER_RETRY.maxMs later. Only after a silence, so a controller that announces but refuses or
      // does not answer registrations still gets the full backoff.
      if (reappeared && !this.current) this.wakeUp?.();
      return;
    }
    // another controller: while the one followed announces and answers, it leads, and this one is not heeded
    // (two that both announce do not make the worker go back and forth)
    const silent = followed === null || now - followed.lastHeard > SILENCE_MS;
    if (!silent && !this.followedFailing) return;
    this.follow(from, parsed.data, silent);
  }

  /**
   * Follows `leader`, which announces: a registration with the controller followed before ends here. When
   * that one had gone silent (or none was followed), the worker registers at once; when it still announces but
   * failed, the backoff under way is waited out first.
   */
  private follow(leader: Announcer, announcement: Announcement, silent: boolean): void {
    const before = this.followed;
    this.followed = leader;
    this.followedFailing = false;
    this.current = null;
    // a call still out to the one before (a heartbeat, a registration) fails now, instead of timing out
    this.rpc?.close();
    this.rpc = null;
    this.sessionClient?.close();
    this.sessionClient = null;
    if (before)
      this.log.info(
        { controller: leader.address, before: before.address, reason: silent ? 'silent' : 'failing' },
        'following another controller: the one followed before went silent or failed',
      );
    this.useRegisterPort(leader, announcement);
    if (silent) {
      this.takeovers += 1;
      this.wakeUp?.();
    }
  }

  /** Opens the client to the registration socket the followed controller announces, unless it is open already. */
  private useRegisterPort(from: Announcer, announcement: Announcement): void {
    const endpoint = `tcp://${from.host}:${announcement.register_port}`;
    if (endpoint === this.rpc?.address) return;
    this.rpc?.close();
    this.rpc = connectRpc(endpoint, 3000);
    this.sessionClient?.close();
    this.sessionClient = null;
    this.log.info(
      { controller: from.address, register: endpoint, system: announcement.system_name },
      'heard the controller',
    );
  }

  /** Register, then heartbeat; on any loss of the controller, back off and register again. */
  private async lifecycle(peer: SessionPeer): Promise<void> {
    let attempt = 1;
    let waitingLogged = false;
    let takeovers = this.takeovers;
    while (!this.closed) {
      if (takeovers !== this.takeovers) {
        // another controller leads: it gets a fresh start, not the backoff left from the one before
        takeovers = this.takeovers;
        attempt = 1;
        waitingLogged = false;
      }
      const registered = this.current;
      const session = this.session;
      if (registered && session) {
        try {
          await this.heartbeat(session, registered, peer);
        } catch (error) {
          // the worker left for another controller while this heartbeat was out: it registers with that one now
          if (this.current !== registered) continue;
          this.log.warn(
            { controller: this.followed?.address, error: String(error) },
            'heartbeat failed: registering again',
          );
          this.current = null;
          this.followedFailing = true;
          await this.pause(backoffMs(CONTROLLER_RETRY, attempt));
        }
        continue;
      }
      const followed = this.followed;
      if (followed && this.rpc) {
        try {
          await this.register(followed, this.rpc, peer);
          attempt = 1;
          waitingLogged = false;
          continue;
        } catch (error) {
          // another controller was followed meanwhile: registering with it is not this failure's to delay
          if (this.followed !== followed) continue;
          this.followedFailing = true;
          // a refused secret read from the data dir: the server may have been given another one (--secret)
          const from = this.config.secretFile ? { secret_from: this.config.secretFile } : {};
          if (!waitingLogged)
            this.log.warn(
              { controller: followed.address, error: String(error), ...from },
              'registration failed: retrying with backoff',
            );
          waitingLogged = true;
        }
      } else if (!waitingLogged) {
        const controller = this.announcers.map((announcer) => announcer.address).join(',');
        this.log.info({ controller }, 'waiting for the controller');
        waitingLogged = true;
      }
      await this.pause(backoffMs(CONTROLLER_RETRY, attempt));
      attempt += 1;
    }
  }

  private async register(controller: Announcer, rpc: RpcClient, peer: SessionPeer): Promise<void> {
    const params = await this.registerParams(peer);
    const registration = await rpc.call(CONTROLLER_METHODS.register, params, registerResultSchema);
    // an answer that came as the worker left for another controller is not used
    if (this.followed !== controller) throw new Error(`${controller.address} is no longer the controller followed`);
    const apiUrl = registration.api_url ?? `http://${urlHost(controller.host)}:${registration.api_port}`;
    this.useSessionPort(controller, registration.session_port);
    const together = registration.results_together === true;
    const api = new ApiClient(apiUrl, () => this.token ?? '', this.config.httpTimeouts, together);
    this.current = { registration, api };
    this.log.info({ controller: controller.address, worker_id: registration.worker_id, api: apiUrl }, 'registered');
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
      prefetch: peer.jobs.prefetchNow(),
      engine: peer.engine,
      filters: [...FILTER_NAMES],
      operations: [...peer.capabilities.operations],
      formats: [...peer.capabilities.formats],
      resources: peer.monitor.current(),
      running: peer.jobs.heldLeases(),
      ...(imagesDirId === null ? {} : { images_dir_id: imagesDirId }),
      assign_many: true,
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
  private useSessionPort(controller: Announcer, port: number | undefined): void {
    const endpoint = port === undefined ? null : `tcp://${controller.host}:${port}`;
    if (endpoint === (this.sessionClient?.address ?? null)) return;
    this.sessionClient?.close();
    this.sessionClient = endpoint === null ? null : connectRpc(endpoint, 3000);
    if (endpoint) this.log.info({ session: endpoint }, 'heartbeats go to the session socket');
  }

  /** One heartbeat, then the wait until the next. */
  private async heartbeat(rpc: RpcClient, registered: Registered, peer: SessionPeer): Promise<void> {
    const { registration } = registered;
    const reply = await rpc.call(
      CONTROLLER_METHODS.heartbeat,
      {
        token: registration.token,
        resources: peer.monitor.current(),
        running: peer.jobs.heldLeases(),
        waiting: peer.jobs.waitingLeases(),
        prefetch: peer.jobs.prefetchNow(),
      },
      heartbeatResultSchema,
      Math.max(1000, registration.lease_ms - registration.heartbeat_ms),
    );
    // the worker left for another controller while the answer came: it is not this one's to act on
    if (this.current !== registered) return;
    if (!reply.known) {
      this.log.info('the controller does not know this worker (restarted?): registering again');
      this.current = null;
      return;
    }
    peer.jobs.leasesLost(reply.cancel);
    await this.pause(registration.heartbeat_ms);
  }

  /**
   * A wait: between registration attempts, or between heartbeats. Cut short when the controller (re)appears
   * while the worker is not registered, and when another controller is followed.
   */
  private pause(ms: number): Promise<void> {
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
