// Versioned schema of the PostgreSQL datastore: migrations/NNNN_<name>.sql, applied in order, each once.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';
import type { Logger } from '../../../common/log.js';

/**
 * The .sql files are read from the source tree (they are not compiled): from dist/controller/store/postgres/
 * as from controller/store/postgres/ run directly, this is the same folder.
 */
export const MIGRATIONS_DIR = fileURLToPath(
  new URL('../../../../controller/store/postgres/migrations/', import.meta.url),
);

/** The key of the transaction-scoped advisory lock every migration run takes ('DPIP' in ASCII). */
const LOCK_KEY = 0x44504950;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations of a folder, oldest first: every `<version>_<name>.sql` in it. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    const match = /^(\d+)_(.+)\.sql$/.exec(file);
    if (!match) continue;
    const version = Number(match[1]);
    const clash = migrations.find((migration) => migration.version === version);
    if (clash) throw new Error(`two migrations have version ${version}: ${clash.name} and ${match[2]}`);
    migrations.push({ version, name: match[2]!, sql: await readFile(join(dir, file), 'utf8') });
  }
  return migrations.sort((a, b) => a.version - b.version);
}

export interface MigrateOptions {
  log?: Pick<Logger, 'info'>;
  /** The folder of the migrations (the server's own by default). */
  dir?: string;
}

/**
 * Brings the database's schema to the newest migration: applies, in order, every migration newer than the
 * version recorded in schema_migrations, each in its own transaction under a transaction-scoped advisory
 * lock, so that servers starting together apply each migration once (the others wait, then find it done).
 * Refuses a database whose recorded version is newer than the newest migration this server has. Returns the
 * versions it applied (none when the schema was up to date).
 */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<number[]> {
  const migrations = await loadMigrations(options.dir);
  const newest = migrations.length > 0 ? migrations[migrations.length - 1]!.version : 0;
  const applied: number[] = [];
  const client = await pool.connect();
  try {
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        await client.query(
          `CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
           )`,
        );
        const { rows } = await client.query<{ version: number }>(
          'SELECT coalesce(max(version), 0) AS version FROM schema_migrations',
        );
        const current = rows[0]!.version;
        if (current > newest) {
          throw new Error(
            `the database schema is at version ${current}, newer than this server knows (${newest}): ` +
              'upgrade the server',
          );
        }
        const next = migrations.find((migration) => migration.version > current);
        if (!next) {
          await client.query('COMMIT');
          return applied;
        }
        await client.query(next.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [next.version, next.name]);
        await client.query('COMMIT');
        applied.push(next.version);
        options.log?.info({ version: next.version, name: next.name }, 'database schema migrated');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
  } finally {
    client.release();
  }
}
