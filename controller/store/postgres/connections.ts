import type pg from 'pg';
import type { Logger } from '../../../common/log.js';

/**
 * Logs a connection of the pool that breaks, whether idle or in use. node-postgres's client emits 'error' when
 * its connection ends under it, and the pool listens only while the client is idle: without a listener of its
 * own, a connection that broke during a query (the database restarted, a proxy dropped it) threw the 'error'
 * event and ended the server. The query in flight is failed either way, and its caller answers for it.
 */
export function watchConnections(pool: pg.Pool, log?: Pick<Logger, 'warn'>): void {
  const broke = (error: Error): void => log?.warn({ error: error.message }, 'a PostgreSQL connection broke');
  pool.on('connect', (client) => client.on('error', broke));
  // the pool passes on an idle client's error, which the client's own listener has logged already
  pool.on('error', () => undefined);
}
