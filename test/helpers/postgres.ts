// A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a free loopback port,
// trust authentication, run as the unprivileged `postgres` user when the tests run as root (PostgreSQL refuses
// to run as root). Debian's postgresql package is installed when its binaries are missing.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Spawned } from './processes.js';
import { makeDirs, type TestDirs } from './system.js';
import { freePorts } from './ports.js';

const run = promisify(execFile);
const INSTALLER = fileURLToPath(new URL('../../../scripts/install-postgresql.sh', import.meta.url));
const DATABASE = 'dpip_test';
const asRoot = process.getuid?.() === 0;

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/dpip_test */
  url: string;
  port: number;
  /** The cluster's folder (its data directory is `<dir>/data`, its log `<dir>/postgres.log`). */
  dir: string;
  /** A new empty database on this server (its name given, else a fresh one): its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Lets no new connection into the database of `url` and ends those it has (as a database that goes away
   * does), until `open` lets them in again.
   */
  closeDatabase(url: string): Promise<void>;
  openDatabase(url: string): Promise<void>;
  /** Runs one statement as the superuser in the database of `url`. */
  query(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Stops the server (pg_ctl stop -m fast) and removes its folder. */
  stop(): Promise<void>;
  /** SIGKILLs the postmaster and its backends, as a crash of its machine would; stop() still cleans up. */
  kill(): Promise<void>;
}

/** The newest installed version's bin folder that has initdb and pg_ctl, or null. */
function findBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((name) => /^\d+(\.\d+)?$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/** The PostgreSQL binaries' folder, installing Debian's package first when they are missing (root only). */
export function ensurePostgres(): string | null {
  const found = findBinDir();
  if (found || !asRoot) return found;
  execFileSync('bash', [INSTALLER], { stdio: 'inherit', timeout: 600_000 });
  return findBinDir();
}

/**
 * Skips the calling suite (from its `before`) when PostgreSQL is missing and cannot be installed by this user,
 * saying what to run.
 */
export function skipWithoutPostgres(context: Mocha.Context): void {
  if (ensurePostgres()) return;
  console.warn('    PostgreSQL is missing and this user cannot install it: run scripts/install-postgresql.sh as root');
  context.skip();
}

// The clusters still running: whatever happens to the test run, none outlives it.
const running = new Map<string, string>(); // folder -> data directory

process.on('exit', () => {
  for (const [dir, data] of running) {
    const pid = postmasterPid(data);
    if (pid !== null) killGroup(pid);
    rmSync(dir, { recursive: true, force: true });
  }
});

function postmasterPid(data: string): number | null {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Running: neither gone nor a zombie nobody reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILLs the postmaster's process group (pg_ctl starts it in its own session), or the postmaster alone. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Runs a PostgreSQL binary, as the postgres user when this process is root. */
function runAsOwner(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return asRoot ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args);
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = ensurePostgres();
  if (!bin)
    throw new Error(
      'PostgreSQL is not installed and this user cannot install it: run scripts/install-postgresql.sh as root',
    );
  const dir = await mkdtemp(join(tmpdir(), 'dpip-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  running.set(dir, data);
  try {
    if (asRoot) await run('chown', ['postgres:postgres', dir]);
    // initdb's own files are not synced (a throwaway cluster); the server runs with fsync on
    await runAsOwner(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    // trust on the local socket (in the temporary folder) and on 127.0.0.1 only
    await writeFile(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePorts();
      const settings = [
        `-c port=${port}`,
        '-c listen_addresses=127.0.0.1',
        `-c unix_socket_directories=${dir}`,
        '-c fsync=on',
        '-c synchronous_commit=on',
      ].join(' ');
      try {
        await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-o', settings, '-w', '-t', '30', 'start']);
        break;
      } catch (error) {
        // another process may have taken the port between freePorts() and the server's bind
        if (attempt >= 3) throw new Error(`PostgreSQL did not start: ${String(error)}\n${readLog(log)}`);
      }
    }
    const urlOf = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
    const query = async (url: string, sql: string, values: unknown[] = []): Promise<pg.QueryResult> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await client.query(sql, values);
      } finally {
        await client.end();
      }
    };
    const databaseOf = (url: string): string => new URL(url).pathname.slice(1);
    const createDatabase = async (name = `dpip_${randomBytes(6).toString('hex')}`): Promise<string> => {
      await query(urlOf('postgres'), `CREATE DATABASE ${name}`);
      return urlOf(name);
    };
    await createDatabase(DATABASE);
    return {
      url: urlOf(DATABASE),
      port,
      dir,
      createDatabase,
      query,
      async closeDatabase(url) {
        const database = databaseOf(url);
        await query(urlOf('postgres'), `ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
        await query(
          urlOf('postgres'),
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [database],
        );
        // a terminated backend exits a moment later: until then its connection still answers
        for (let waited = 0; waited < 10_000; waited += 20) {
          const { rows } = await query(
            urlOf('postgres'),
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [database],
          );
          if (rows[0].n === 0) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        throw new Error(`the connections to ${database} did not end`);
      },
      async openDatabase(url) {
        await query(urlOf('postgres'), `ALTER DATABASE ${databaseOf(url)} ALLOW_CONNECTIONS true`);
      },
      async stop() {
        if (!running.has(dir)) return;
        if (postmasterPid(data) !== null) {
          await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']).catch(() => {
            const pid = postmasterPid(data);
            if (pid !== null) killGroup(pid);
          });
        }
        running.delete(dir);
        await rm(dir, { recursive: true, force: true });
      },
      async kill() {
        const pid = postmasterPid(data);
        if (pid === null) return;
        killGroup(pid);
        const deadline = Date.now() + 10_000;
        while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      },
    };
  } catch (error) {
    const pid = postmasterPid(data);
    if (pid !== null) killGroup(pid);
    running.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function readLog(log: string): string {
  try {
    return readFileSync(log, 'utf8');
  } catch {
    return '';
  }
}

/** What a suite of whole servers on a PostgreSQL of its own has in each test. */
export interface PostgresSuite {
  readonly postgres: TestPostgres;
  /** Fresh folders for each test. */
  readonly dirs: TestDirs;
  /** Processes a test started: killed after it, whether it passed or not. */
  readonly started: Spawned[];
}

/**
 * Registers the hooks of such a suite (call it inside `describe`): one PostgreSQL for the suite (the suite is
 * skipped when it cannot be had), fresh folders for each test, and the test's processes killed after it.
 */
export function postgresSuite(): PostgresSuite {
  let postgres: TestPostgres | null = null;
  let dirs: TestDirs | null = null;
  const started: Spawned[] = [];
  before(async function () {
    skipWithoutPostgres(this);
    postgres = await startPostgres();
  });
  after(async () => {
    await postgres?.stop();
  });
  beforeEach(async () => {
    dirs = await makeDirs();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((process) => process.kill('SIGKILL')));
    await dirs?.remove();
  });
  const ready = <T>(value: T | null, what: string): T => {
    if (value === null) throw new Error(`${what} is only there inside a test`);
    return value;
  };
  return {
    get postgres() {
      return ready(postgres, 'the suite PostgreSQL');
    },
    get dirs() {
      return ready(dirs, "the test's folders");
    },
    started,
  };
}
