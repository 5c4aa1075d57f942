// Which of the servers sharing one PostgreSQL database leads (runs the controller and the scheduler): the one
// that holds a session-level advisory lock. It writes where it can be reached into the leadership row and
// bumps the row's epoch; its commits check that epoch (postgres-store.ts), so a server that lost the lead can
// no longer write. The others wait for the lock, and meanwhile forward the API to the leader (bin/standby-api.ts).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../../common/log.js';
import { watchConnections } from './connections.js';
import { migrate } from './migrate.js';
import { redactedUrl } from './redacted-url.js';

/** The key of the leader's session-level advisory lock ('DPIL' in ASCII); migrations use another. */
const LEADER_LOCK_KEY = 0x4450494c;
/** How often a waiting server tries the lock, and the leader checks its lock connection. */
export const LEADERSHIP_POLL_MS = 500;
/** A check of the lock connection that takes longer than this means it is gone. */
const CHECK_TIMEOUT_MS = 3000;

/** Where the leader can be reached: its API for the others' forwarding, its controller for workers. */
export interface LeaderAddress {
  apiUrl: string;
  controllerHost: string;
  controllerPort: number;
}

export interface Leader extends LeaderAddress {
  serverId: string;
  epoch: number;
  since: string;
}

export interface Leadership {
  /** This server's id in the leadership row. */
  readonly serverId: string;
  /** Tries once to lead: the epoch this server now leads in, or null when another server leads. */
  tryLead(address: LeaderAddress): Promise<number | null>;
  /** Tries every LEADERSHIP_POLL_MS until this server leads (or `signal` aborts): the epoch it leads in. */
  waitToLead(address: LeaderAddress, signal?: AbortSignal): Promise<number>;
  /** The server that leads now, as the leadership row says (null before any server led). */
  leader(): Promise<Leader | null>;
  /**
   * Called once if the lock's connection is lost while leading (the database restarted, the network failed):
   * the lock is gone with it and another server may lead already. The leader must stop acting at once.
   */
  onLost(listener: (reason: string) => void): void;
  /** Gives the lead up as if it were lost (the onLost listeners are told): to read every record again. */
  relinquish(reason: string): void;
  close(): Promise<void>;
}

export interface LeadershipOptions {
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/**
 * Opens the leadership of the database at `url` (migrating its schema first): a connection of its own holds the
 * lock, with TCP keepalives short enough that the database notices a leader whose machine died within seconds
 * (not after the system's two hours) and gives the lock to the next.
 */
export async function openLeadership(url: string, options: LeadershipOptions = {}): Promise<Leadership> {
  const serverId = randomUUID();
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
  watchConnections(pool, options.log);
  const lockClient = new pg.Client({
    connectionString: url,
    keepAlive: true,
    keepAliveInitialDelayMillis: 1000,
    connectionTimeoutMillis: 5000,
    application_name: 'dpip-leadership',
  });
  try {
    await migrate(pool, options.log ? { log: options.log } : {});
    await lockClient.connect();
    // the database's side: a leader whose machine vanished is noticed in about 2 + 3 x 1 s
    await lockClient.query(
      'SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3',
    );
  } catch (error) {
    await lockClient.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`the PostgreSQL datastore at ${redactedUrl(url)} cannot be used: ${message}`);
  }
  const listeners: ((reason: string) => void)[] = [];
  let leading = false;
  let lost = false;
  let closed = false;
  let check: NodeJS.Timeout | null = null;

  function loseLead(reason: string): void {
    if (lost || closed || !leading) return;
    lost = true;
    if (check) clearInterval(check);
    options.log?.error({ reason }, 'this server no longer leads');
    for (const listener of listeners) listener(reason);
  }
  lockClient.on('error', (error) => loseLead(`the lock connection failed: ${error.message}`));
  lockClient.on('end', () => loseLead('the lock connection ended'));

  /** While leading: the lock connection answers, or the lead is lost. */
  function watchLock(): void {
    let pending = false;
    check = setInterval(() => {
      if (pending) return;
      pending = true;
      const timeout = setTimeout(
        () => loseLead(`the lock connection did not answer in ${CHECK_TIMEOUT_MS} ms`),
        CHECK_TIMEOUT_MS,
      );
      lockClient
        .query('SELECT 1')
        .catch((error: unknown) => loseLead(`the lock connection failed: ${String(error)}`))
        .finally(() => {
          clearTimeout(timeout);
          pending = false;
        });
    }, LEADERSHIP_POLL_MS);
    check.unref();
  }

  async function tryLead(address: LeaderAddress): Promise<number | null> {
    if (leading) throw new Error('this server leads already');
    const { rows } = await lockClient.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      LEADER_LOCK_KEY,
    ]);
    if (!rows[0]?.locked) return null;
    const updated = await lockClient.query<{ epoch: string }>(
      `UPDATE leadership SET epoch = epoch + 1, server_id = $1, api_url = $2, controller_host = $3,
         controller_port = $4, since = now()
       WHERE id = 1 RETURNING epoch`,
      [serverId, address.apiUrl, address.controllerHost, address.controllerPort],
    );
    leading = true;
    watchLock();
    const epoch = Number(updated.rows[0]!.epoch);
    options.log?.info({ epoch, server_id: serverId }, 'this server leads');
    return epoch;
  }

  return {
    serverId,
    tryLead,
    async waitToLead(address, signal) {
      for (;;) {
        signal?.throwIfAborted();
        const epoch = await tryLead(address);
        if (epoch !== null) return epoch;
        await new Promise((resolve) => setTimeout(resolve, LEADERSHIP_POLL_MS));
      }
    },
    async leader() {
      const { rows } = await pool.query<{
        epoch: string;
        server_id: string | null;
        api_url: string | null;
        controller_host: string | null;
        controller_port: number | null;
        since: Date | null;
      }>('SELECT epoch, server_id, api_url, controller_host, controller_port, since FROM leadership WHERE id = 1');
      const row = rows[0];
      if (!row?.server_id || !row.api_url || !row.controller_host || !row.controller_port || !row.since) return null;
      return {
        serverId: row.server_id,
        epoch: Number(row.epoch),
        apiUrl: row.api_url,
        controllerHost: row.controller_host,
        controllerPort: row.controller_port,
        since: row.since.toISOString(),
      };
    },
    onLost(listener) {
      listeners.push(listener);
    },
    relinquish: loseLead,
    async close() {
      closed = true;
      if (check) clearInterval(check);
      // ending the session releases the lock: the next server may lead at once
      await lockClient.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
