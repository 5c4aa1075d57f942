// The datastore kept in PostgreSQL: the records in memory as with lowdb, each commit one transaction that
// writes the changed records as rows (controller/store/postgres/rows.ts), the schema versioned (migrate.ts).
import pg from 'pg';
import { AppError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { COLLECTIONS, emptyData, type Collection, type Data, type Job } from '../schema.js';
import {
  CommitOutcomeUnknown,
  recordBefore,
  trackedStore,
  type ChangeBatch,
  type Persistence,
  type Store,
} from '../tracked-store.js';
import { newSigningKeyHex, signingKeyOf } from '../signing-key.js';
import { watchConnections } from './connections.js';
import { migrate } from './migrate.js';
import { redactedUrl } from './redacted-url.js';
import { CODECS, utcTimeAsIso, type TableCodec } from './rows.js';

export interface PostgresStoreOptions {
  log?: Pick<Logger, 'info' | 'warn'>;
  /** Connections kept open (default 4: commits are one at a time, loads and checks use the rest). */
  connections?: number;
  /** A statement that takes longer fails (and its commit with it, rolled back): default 15 s. */
  statementTimeoutMs?: number;
  /**
   * The epoch this server leads in (leadership.ts): every commit first checks that the leadership row still
   * holds it, and fails whole (`LeadershipLost`) once another server has taken over.
   */
  leaderEpoch?: number;
}

/**
 * A job's row did not hold what this server last wrote: someone else changed it. Answered 503: the server reads
 * every record again (Store.onNeedsReload), and the same request later may succeed.
 */
export class StoreConflictError extends AppError {
  override name = 'StoreConflictError';
  constructor(message: string) {
    super('unavailable', message);
  }
}

/** Another server leads now: this one may no longer write (answered 503: the request may go to the leader). */
export class LeadershipLost extends AppError {
  override name = 'LeadershipLost';
  constructor(message: string) {
    super('unavailable', message);
  }
}

/**
 * PostgreSQL could not be reached or refused the connection (down, restarting, too many connections, a timeout):
 * answered 503, nothing of the commit was kept, and the same request later may succeed.
 */
export class DatastoreUnavailable extends AppError {
  override name = 'DatastoreUnavailable';
  constructor(override readonly cause: unknown) {
    super('unavailable', 'the datastore (PostgreSQL) is unavailable: nothing was kept. Try again shortly');
  }
}

const DRIVER_CONNECTION_ERRORS =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** SQLSTATE classes of a connection, a shutdown, or a lack of resources, and node's own network errors. */
function unreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // 57014: a statement cancelled by statement_timeout
    if (/^(08|53|57P)/.test(code) || code === '57014' || code.startsWith('E')) return true; // ECONNREFUSED, ...
    return false;
  }
  const message = error instanceof Error ? error.message : '';
  // node-postgres's own: a connection ended under it, or none could be had in time
  return DRIVER_CONNECTION_ERRORS.test(message);
}

const DEFAULT_STATEMENT_TIMEOUT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 5_000;

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** INSERT ... ON CONFLICT DO UPDATE of rows given as one JSON array: one statement for a whole collection. */
function upsertSql(codec: TableCodec<unknown>): string {
  const table = quoted(codec.table);
  const others = codec.columns.filter((column) => column !== codec.key).map(quoted);
  const set = others.map((column) => `${column} = EXCLUDED.${column}`).join(', ');
  return (
    `INSERT INTO ${table} SELECT * FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) ` +
    `ON CONFLICT (${quoted(codec.key)}) DO ${set ? `UPDATE SET ${set}` : 'NOTHING'}`
  );
}

/** INSERT of new rows given as one JSON array. */
export function insertSql(codec: TableCodec<unknown>): string {
  const table = quoted(codec.table);
  return `INSERT INTO ${table} SELECT * FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb)`;
}

/**
 * The job transitions of a commit, each guarded on the state and lease the job had before it (a
 * compare-and-set, as graphile-worker's completeJob): a job another server changed meanwhile is not
 * overwritten, and the commit fails whole. Claims (a queued job given a lease) lock their rows with FOR UPDATE
 * SKIP LOCKED: a claim never waits on a job another transaction holds, it fails instead.
 */
function guardedJobsSql(codec: TableCodec<unknown>, claims: boolean): string {
  const columns = codec.columns.filter((column) => column !== codec.key).map(quoted);
  const set = `UPDATE jobs AS j SET (${columns.join(', ')}) = (${columns.map((column) => `r.${column}`).join(', ')}) `;
  const rows = 'FROM jsonb_populate_recordset(NULL::jobs, $1::jsonb) AS r ';
  if (claims)
    return (
      `${set}${rows}WHERE j.id = r.id AND j.id IN (SELECT q.id FROM jobs AS q ` +
      "WHERE q.id IN (SELECT g.id FROM jsonb_to_recordset($1::jsonb) AS g(id text)) AND q.state = 'queued' " +
      'AND q.lease_id IS NULL FOR UPDATE OF q SKIP LOCKED)'
    );
  return (
    `${set}${rows}, jsonb_to_recordset($1::jsonb) AS g(id text, before_state text, before_lease_id text) ` +
    'WHERE j.id = r.id AND g.id = r.id AND j.state = g.before_state ' +
    'AND j.lease_id IS NOT DISTINCT FROM g.before_lease_id'
  );
}

/**
 * Connections to the datastore's database, as the server and dpip-import open them. A connection that breaks while
 * idle (the server restarted) is dropped by the pool, which opens another when one is needed: not a reason to stop.
 */
export function datastorePool(
  url: string,
  connections: number,
  log?: Pick<Logger, 'warn'>,
  statementTimeoutMs = DEFAULT_STATEMENT_TIMEOUT_MS,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: connections,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: statementTimeoutMs,
    application_name: 'dpip',
  });
  watchConnections(pool, log);
  return pool;
}

/** Opens the PostgreSQL datastore at `url`: migrates its schema, loads every record. */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const pool = datastorePool(url, options.connections ?? 4, options.log, options.statementTimeoutMs);
  const data = emptyData();
  try {
    await migrate(pool, options.log ? { log: options.log } : {});
    await loadAll(pool, data);
  } catch (error) {
    await pool.end().catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`the PostgreSQL datastore at ${redactedUrl(url)} cannot be used: ${message}`);
  }

  const reloadListeners: ((reason: string) => void)[] = [];
  /** Memory and the database disagree (a conflict, another leader): whoever listens reads every record again. */
  function needsReload(error: Error): void {
    // after the failed commit's rollback in memory, not in the middle of it
    queueMicrotask(() => {
      for (const listener of reloadListeners) listener(error.message);
    });
  }

  async function write(batch: ChangeBatch, durable: boolean): Promise<void> {
    const plan = planWrite(data, batch);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw new DatastoreUnavailable(error);
    }
    let broken: Error | undefined;
    let committing = false;
    try {
      await client.query('BEGIN');
      // what a crash may lose because it is re-derived (see CommitOptions.durable) need not wait for the WAL flush
      if (!durable) await client.query('SET LOCAL synchronous_commit = off');
      if (options.leaderEpoch !== undefined) await checkLead(client, options.leaderEpoch);
      for (const table of plan) await writeTable(client, table);
      committing = true;
      await client.query('COMMIT');
    } catch (error) {
      if (unreachable(error)) {
        // a connection that broke is not given back to the pool
        broken = error instanceof Error ? error : new Error(String(error));
        // before its COMMIT the database drops the transaction with the connection; during it, it may have kept it
        if (committing) {
          needsReload(broken);
          throw new CommitOutcomeUnknown(error);
        }
        throw new DatastoreUnavailable(error);
      }
      await client.query('ROLLBACK').catch(() => undefined);
      if (error instanceof StoreConflictError || error instanceof LeadershipLost) needsReload(error);
      throw error;
    } finally {
      client.release(broken);
    }
  }

  const persistence: Persistence = {
    write,
    restored: () => undefined,
    // PostgreSQL reclaims deleted rows' space itself (autovacuum)
    compact: async () => undefined,
    close: () => pool.end(),
    stats: () => ({ journalBytes: 0, snapshots: 0, recovered: { applied: 0, skipped: 0 } }),
    async signingKey() {
      // the first server to ask makes it; every other one reads the same
      await pool.query("INSERT INTO settings (name, value) VALUES ('jwt-secret', $1) ON CONFLICT (name) DO NOTHING", [
        newSigningKeyHex(),
      ]);
      const { rows } = await pool.query<{ value: string }>("SELECT value FROM settings WHERE name = 'jwt-secret'");
      const key = signingKeyOf(rows[0]?.value ?? '');
      if (!key) throw new Error('the signing key in the settings table (jwt-secret) is shorter than 32 bytes');
      return key;
    },
    onNeedsReload(listener) {
      reloadListeners.push(listener);
    },
  };
  return trackedStore('postgres', data, () => persistence);
}

/** Rows read per query at open: a table of millions is read in pages, not held twice over in one result. */
const LOAD_PAGE_ROWS = 20_000;

/** The type parsers of the open's queries: timestamptz as the ISO string kept, without a Date (utcTimeAsIso). */
const LOAD_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.TIMESTAMPTZ
      ? utcTimeAsIso
      : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** Every record of every table, on one connection whose session writes times in UTC (see utcTimeAsIso). */
async function loadAll(pool: pg.Pool, data: Data): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("SET TIME ZONE 'UTC'");
    for (const collection of COLLECTIONS) await load(client, data, collection);
    await client.query('RESET TIME ZONE');
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    // a connection that failed half way is not given back to the pool as it is
    client.release(broken);
  }
}

async function load(client: pg.PoolClient, data: Data, collection: Collection): Promise<void> {
  const codec = CODECS[collection] as TableCodec<unknown>;
  const records = data[collection] as Record<string, unknown>;
  const order = codec.loadOrder ?? codec.key;
  const type = codec.loadOrder ? 'bigint' : 'text';
  const column = quoted(order);
  const text =
    `SELECT * FROM ${quoted(codec.table)} WHERE $1::${type} IS NULL OR ${column} > $1::${type} ` +
    `ORDER BY ${column} LIMIT $2`;
  let after: string | null = null;
  for (;;) {
    const { rows }: { rows: Record<string, unknown>[] } = await client.query({
      text,
      values: [after, LOAD_PAGE_ROWS],
      types: LOAD_TYPES,
    });
    for (const row of rows) records[String(row[codec.key])] = codec.fromRow(row);
    if (rows.length < LOAD_PAGE_ROWS) return;
    after = String(rows.at(-1)![order]);
  }
}

/**
 * Whether this server still leads in `epoch`. FOR SHARE holds the row until the commit: a server taking over
 * (which bumps the epoch) waits for this commit to end, and every later commit of this server is refused.
 */
async function checkLead(client: pg.PoolClient, epoch: number): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM leadership WHERE id = 1 AND epoch = $1 FOR SHARE', [epoch]);
  if (rowCount === 1) return;
  throw new LeadershipLost(
    `another server leads now (this one led in epoch ${epoch}): nothing of this commit was kept`,
  );
}

/** What one commit writes to one table, its rows read from memory when the write began. */
interface TableWrite {
  codec: TableCodec<unknown>;
  gone: string[];
  upserts: Record<string, unknown>[];
  inserts: Record<string, unknown>[];
  guarded: Record<string, unknown>[];
}

/**
 * The rows of a batch, read from memory at once, before anything is awaited: a change made while the write is in
 * flight belongs to the next batch, whose before-images are then exactly what this one writes (as the journal
 * serializes its lines at once). Reading rows later would write those changes early, and the next batch's guards
 * would then see them as someone else's.
 */
function planWrite(data: Data, batch: ChangeBatch): TableWrite[] {
  const plan: TableWrite[] = [];
  for (const [collection, changed] of batch) {
    const codec = CODECS[collection] as TableCodec<unknown>;
    const records = data[collection] as Record<string, unknown>;
    const write: TableWrite = { codec, gone: [], upserts: [], inserts: [], guarded: [] };
    for (const [key, before] of changed) {
      if (!Object.hasOwn(records, key)) {
        write.gone.push(key);
        continue;
      }
      const row = codec.toRow(records[key]);
      if (collection !== 'jobs') write.upserts.push(row);
      else {
        const was = recordBefore(before) as Job | undefined;
        if (!was) write.inserts.push(row);
        else write.guarded.push({ ...row, before_state: was.state, before_lease_id: was.lease?.lease_id ?? null });
      }
    }
    plan.push(write);
  }
  return plan;
}

async function writeTable(
  client: pg.PoolClient,
  { codec, gone, upserts, inserts, guarded }: TableWrite,
): Promise<void> {
  const table = quoted(codec.table);
  if (gone.length > 0) await client.query(`DELETE FROM ${table} WHERE ${quoted(codec.key)} = ANY($1::text[])`, [gone]);
  if (upserts.length > 0) await client.query(upsertSql(codec), [JSON.stringify(upserts)]);
  if (inserts.length > 0) await client.query(insertSql(codec), [JSON.stringify(inserts)]);
  const claims = guarded.filter(isClaim);
  const others = guarded.filter((row) => !isClaim(row));
  for (const [rows, claim] of [
    [claims, true],
    [others, false],
  ] as const) {
    if (rows.length === 0) continue;
    const { rowCount } = await client.query(guardedJobsSql(codec, claim), [JSON.stringify(rows)]);
    if (rowCount !== rows.length) throw await conflict(client, rows, rowCount ?? 0);
  }
}

/** A queued job given a lease (assigned, or started at once) by this commit. */
function isClaim(row: Record<string, unknown>): boolean {
  return row.before_state === 'queued' && row.before_lease_id === null && row.lease_id !== null;
}

/** Which job did not hold what this server last wrote, and what the database holds instead. */
async function conflict(
  client: pg.PoolClient,
  guarded: readonly Record<string, unknown>[],
  updated: number,
): Promise<StoreConflictError> {
  const ids = guarded.map((row) => String(row.id));
  const { rows } = await client
    .query<{ id: string; state: string; lease_id: string | null }>(
      'SELECT id, state, lease_id FROM jobs WHERE id = ANY($1::text[])',
      [ids],
    )
    .catch(() => ({ rows: [] as { id: string; state: string; lease_id: string | null }[] }));
  const held = new Map(rows.map((row) => [row.id, row]));
  const first = guarded.find((row) => {
    const now = held.get(String(row.id));
    return !now || now.state !== row.before_state || now.lease_id !== row.before_lease_id;
  });
  const now = first ? held.get(String(first.id)) : undefined;
  const detail = first
    ? `job ${String(first.id)}: this server last wrote it ${String(first.before_state)} (lease ` +
      `${String(first.before_lease_id)}); the database holds ${now ? `${now.state} (lease ${now.lease_id})` : 'no row'}`
    : 'the jobs changed while they were read';
  return new StoreConflictError(
    `${guarded.length - updated} of ${guarded.length} jobs were changed in the database by someone else since ` +
      `this server last wrote them (${detail}): nothing of this commit was kept`,
  );
}
