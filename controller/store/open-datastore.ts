import type { Logger } from '../../common/log.js';
import { openStore } from './store.js';
import type { Leadership, LeadershipOptions } from './postgres/leadership.js';
import type { Store } from './tracked-store.js';

/** Where the records are kept (--datastore): lowdb's files in the data dir, or a PostgreSQL database. */
export type DatastoreConfig =
  | { kind: 'lowdb' }
  /** `leaderEpoch`: the epoch this server leads in, checked by every commit (see leadership.ts). */
  | { kind: 'postgres'; url: string; leaderEpoch?: number };

/** `lowdb`, or a `postgres://` (or `postgresql://`) URL; anything else throws, saying what is accepted. */
export function parseDatastore(value: string): DatastoreConfig {
  const trimmed = value.trim();
  if (trimmed === 'lowdb') return { kind: 'lowdb' };
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    try {
      new URL(trimmed);
    } catch {
      throw new Error('the PostgreSQL URL cannot be parsed: postgres://user:password@host:5432/database');
    }
    return { kind: 'postgres', url: trimmed };
  }
  throw new Error('"lowdb" (the data dir) or a URL postgres://user:password@host:5432/database');
}

/** Opens the datastore: the PostgreSQL module is loaded only when it is the one configured. */
export async function openDatastore(config: DatastoreConfig, dataDir: string, log: Logger): Promise<Store> {
  if (config.kind === 'lowdb') return openStore(dataDir);
  const { openPostgresStore } = await import('./postgres/postgres-store.js');
  return openPostgresStore(config.url, {
    log,
    ...(config.leaderEpoch === undefined ? {} : { leaderEpoch: config.leaderEpoch }),
  });
}

/**
 * The leadership of the PostgreSQL database at `url` (several servers sharing it: see leadership.ts), its module
 * loaded only when asked for.
 */
export async function openLeadership(url: string, options: LeadershipOptions = {}): Promise<Leadership> {
  const leadership = await import('./postgres/leadership.js');
  return leadership.openLeadership(url, options);
}
