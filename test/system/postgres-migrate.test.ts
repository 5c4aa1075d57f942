import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { loadMigrations, migrate } from '../../controller/store/postgres/migrate.js';
import { skipWithoutPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const TABLES = [
  'images',
  'jobs',
  'leadership',
  'revoked_tokens',
  'schema_migrations',
  'settings',
  'upload_slots',
  'users',
  'worker_activity',
  'worker_hours',
  'worker_minutes',
  'workers',
  'workloads',
];

describe('PostgreSQL datastore: schema migrations', function () {
  this.timeout(60_000);
  let server: TestPostgres | null = null;
  let pool: pg.Pool | null = null;

  before(async function () {
    skipWithoutPostgres(this);
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 4 });
  });

  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  async function tables(): Promise<string[]> {
    const { rows } = await pool!.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    return rows.map((row) => row.table_name);
  }

  async function recorded(): Promise<number[]> {
    const { rows } = await pool!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    return rows.map((row) => row.version);
  }

  async function reset(): Promise<void> {
    await pool!.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  }

  it('creates the tables, records each migration, and a second run applies nothing', async () => {
    await reset();
    const versions = (await loadMigrations()).map((migration) => migration.version);
    expect(versions[0]).to.equal(1);
    expect(await migrate(pool!)).to.deep.equal(versions);
    expect(await tables()).to.deep.equal(TABLES);
    expect(await recorded()).to.deep.equal(versions);
    const { rows } = await pool!.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'",
    );
    expect(rows.map((row) => row.column_name)).to.include.members([
      'state',
      'attempts',
      'lease_id',
      'lease_worker_id',
      'lease_expires_at',
      'not_before',
    ]);
    expect(await migrate(pool!)).to.deep.equal([]);
    expect(await recorded()).to.deep.equal(versions);
  });

  it('two servers migrating at once apply each migration once', async () => {
    await reset();
    const versions = (await loadMigrations()).map((migration) => migration.version);
    const other = new pg.Pool({ connectionString: server!.url, max: 2 });
    try {
      const [first, second] = await Promise.all([migrate(pool!), migrate(other)]);
      expect([...first, ...second].sort((a, b) => a - b)).to.deep.equal(versions);
    } finally {
      await other.end();
    }
    expect(await recorded()).to.deep.equal(versions);
    expect(await tables()).to.deep.equal(TABLES);
  });

  it('refuses a database whose schema is newer than the server knows', async () => {
    await reset();
    await migrate(pool!);
    const newest = (await loadMigrations()).at(-1)!.version;
    await pool!.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')", [newest + 1]);
    let refusal: unknown = null;
    await migrate(pool!).catch((error: unknown) => (refusal = error));
    expect(String(refusal)).to.contain(
      `the database schema is at version ${newest + 1}, newer than this server knows (${newest}): upgrade the server`,
    );
    const versions = (await loadMigrations()).map((migration) => migration.version);
    expect(await recorded()).to.deep.equal([...versions, newest + 1]);
  });

  it("the helper's server is gone after stop()", async () => {
    await pool!.end();
    pool = null;
    const { url, dir } = server!;
    await server!.stop();
    server = null;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    let failure: unknown = null;
    await client.connect().catch((error: unknown) => (failure = error));
    expect(String(failure)).to.match(/ECONNREFUSED/);
    expect(existsSync(dir)).to.equal(false);
  });

  it('kill() takes a server down at once, and stop() still cleans up after it', async () => {
    const crashed = await startPostgres();
    const pid = Number(readFileSync(join(crashed.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    await crashed.kill();
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).to.equal(false);
    const client = new pg.Client({ connectionString: crashed.url, connectionTimeoutMillis: 2_000 });
    let failure: unknown = null;
    await client.connect().catch((error: unknown) => (failure = error));
    expect(String(failure)).to.match(/ECONNREFUSED/);
    await crashed.stop();
    expect(existsSync(crashed.dir)).to.equal(false);
  });
});
