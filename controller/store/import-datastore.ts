import type { Logger } from '../../common/log.js';
import { readLowdbDir } from './lowdb-read.js';
import type { ImportedCounts } from './postgres/import-records.js';

export type { ImportedCounts };

/**
 * Moves the records of the lowdb datastore in `dataDir` (left as it was) into the empty PostgreSQL database at
 * `url`, with the token signing key: all of them in one transaction, or none. The PostgreSQL module is loaded
 * only here, as for openDatastore.
 */
export async function importLowdbIntoPostgres(
  dataDir: string,
  url: string,
  log?: Pick<Logger, 'info' | 'warn'>,
): Promise<ImportedCounts> {
  const { data, signingKeyHex } = await readLowdbDir(dataDir);
  const { importIntoPostgres } = await import('./postgres/import-records.js');
  return importIntoPostgres(url, data, signingKeyHex, log);
}
