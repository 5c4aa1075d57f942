#!/usr/bin/env node
// `dpip-import --data-dir data --datastore postgres://...`: the records of a server that kept them in lowdb's
// files, moved into the PostgreSQL database its servers will use from now on. Run once, the server stopped.
import path from 'node:path';
import yargs from 'yargs';
import { dropForeignEnv } from '../common/cli-env.js';
import { createLogger } from '../common/log.js';
import { importLowdbIntoPostgres, parseDatastore } from '../controller/index.js';
import { DEFAULT_DATA_DIR } from './cluster-secret.js';

const OPTIONS = {
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR, describe: 'the lowdb datastore to read (left as it is)' },
  datastore: {
    type: 'string',
    demandOption: true,
    describe: 'the PostgreSQL database to fill: postgres://user:password@host:5432/db (new and empty)',
  },
} as const;

dropForeignEnv(process.env, 'DPIP', Object.keys(OPTIONS));
const args = yargs(process.argv.slice(2))
  .scriptName('dpip-import')
  .usage('$0 --data-dir DIR --datastore postgres://...: moves the records of a lowdb datastore into PostgreSQL')
  .parserConfiguration({ 'duplicate-arguments-array': false })
  .env('DPIP')
  .options(OPTIONS)
  .strict()
  .help()
  .parseSync();

try {
  const target = parseDatastore(args.datastore);
  if (target.kind !== 'postgres')
    throw new Error('--datastore: the PostgreSQL database to import into (postgres://...)');
  const dataDir = path.resolve(args.dataDir);
  const log = createLogger('dpip-import', 'warn');
  const counts = await importLowdbIntoPostgres(dataDir, target.url, log);
  const summary = Object.entries(counts)
    .map(([collection, count]) => `${count} ${collection}`)
    .join(', ');
  console.log(`dpip-import: imported ${summary} from ${dataDir}`);
  console.log('start the servers with --datastore and the same --images-dir (or image store) as before');
} catch (error) {
  console.error(`dpip-import: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
