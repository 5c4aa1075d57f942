// Records kept so far in lowdb's files, moved into a PostgreSQL database no server has used yet: the step an
// operator takes once, servers stopped, before starting them with --datastore postgres://...
import type pg from 'pg';
import type { Logger } from '../../../common/log.js';
import { COLLECTIONS, type Collection, type Data } from '../schema.js';
import { migrate } from './migrate.js';
import { datastorePool, insertSql } from './postgres-store.js';
import { redactedUrl } from './redacted-url.js';
import { CODECS, type TableCodec } from './rows.js';

/** Rows per INSERT: a collection of a million records is sent in pieces, not as one JSON string. */
const ROWS_PER_STATEMENT = 5_000;
/** A database holding any of these has been used by a server: an import would mix two histories. */
const USED_IF_ANY_IN: readonly Collection[] = ['users', 'workers', 'workloads', 'images', 'jobs'];

export type ImportedCounts = Record<Collection, number>;

/**
 * Writes every record of `data` (and the token signing key, so that tokens signed before stay good) into the
 * database at `url`, in one transaction: all of them or none. The schema is created or upgraded first. A database
 * that holds users, workers, workloads, images or jobs already is refused, and nothing is written.
 */
export async function importIntoPostgres(
  url: string,
  data: Data,
  signingKeyHex: string | null,
  log?: Pick<Logger, 'info' | 'warn'>,
): Promise<ImportedCounts> {
  const pool = datastorePool(url, 1, log);
  try {
    await migrate(pool, log ? { log } : {});
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      try {
        const counts = await importInTransaction(client, data, signingKeyHex);
        await client.query('COMMIT');
        return counts;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      client.release();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`nothing was imported into the PostgreSQL datastore at ${redactedUrl(url)}: ${message}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

async function importInTransaction(
  client: pg.PoolClient,
  data: Data,
  signingKeyHex: string | null,
): Promise<ImportedCounts> {
  const tables = USED_IF_ANY_IN.map((collection) => `"${CODECS[collection].table}"`);
  // a server starting meanwhile waits for this transaction rather than writing beside it
  await client.query(`LOCK TABLE ${tables.join(', ')} IN EXCLUSIVE MODE`);
  const held: string[] = [];
  for (const collection of USED_IF_ANY_IN) {
    const { rows } = await client.query<{ count: string }>(
      `SELECT count(*) AS count FROM "${CODECS[collection].table}"`,
    );
    const count = Number(rows[0]?.count ?? 0);
    if (count > 0) held.push(`${count} ${collection}`);
  }
  if (held.length > 0)
    throw new Error(
      `the database holds records already (${held.join(', ')}): import into a new, empty database, before any ` +
        'server has used it',
    );
  const counts = {} as ImportedCounts;
  for (const collection of COLLECTIONS) {
    const codec = CODECS[collection] as TableCodec<unknown>;
    const records = Object.values(data[collection] as Record<string, unknown>);
    for (let from = 0; from < records.length; from += ROWS_PER_STATEMENT) {
      const rows = records.slice(from, from + ROWS_PER_STATEMENT).map((record) => codec.toRow(record));
      await client.query(insertSql(codec), [JSON.stringify(rows)]);
    }
    counts[collection] = records.length;
  }
  if (signingKeyHex)
    await client.query(
      "INSERT INTO settings (name, value) VALUES ('jwt-secret', $1) " +
        'ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value',
      [signingKeyHex],
    );
  return counts;
}
