// A worker started without --secret on the server's own machine reads the secret the server keeps in
// its data dir; anywhere else it says where to find the secret and how to pass it.
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { CLUSTER_SECRET_FILE, clusterSecretPath, DEFAULT_DATA_DIR, readKeptSecret } from './cluster-secret.js';

/** Whether `host` names this machine: localhost, a loopback address, or an address of one of its interfaces. */
export function isThisMachine(
  host: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
  machineName: string = hostname(),
): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name.endsWith('.localhost') || name === machineName.toLowerCase()) return true;
  const address = name.replace(/^::ffff:(?=\d+\.)/, '');
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) return true;
  if (['::1', '0:0:0:0:0:0:0:1', '0.0.0.0', '::'].includes(address)) return true;
  for (const list of Object.values(interfaces))
    for (const entry of list ?? []) if (entry.address.toLowerCase() === address) return true;
  return false;
}

/** A command line as a shell reads it: arguments with spaces or shell characters quoted. */
function shellLine(args: readonly string[]): string {
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(' ');
}

export interface SecretSearch {
  /** The controller host the worker dials, as given. */
  controllerHost: string;
  /** The worker's own arguments as given: repeated in the command the error shows. */
  argv: readonly string[];
  /** Absolute: where a server started from here (or with the same --data-dir) keeps its secret. */
  dataDir: string;
}

/** What to run instead, and where the secret is: the end of every "no secret" message. */
function howToPass(argv: readonly string[]): string {
  const command = shellLine(argv);
  return [
    'Start the worker with the secret:',
    `  npm run worker -- ${command} --secret <the secret>`,
    `or keep it out of \`ps\`: DPIP_SECRET=<the secret> npm run worker -- ${command}`,
    'The server prints the secret when it starts ("cluster secret: ...") and keeps it in <its data dir>/' +
      `${CLUSTER_SECRET_FILE}: on the server's machine, \`cat ${DEFAULT_DATA_DIR}/${CLUSTER_SECRET_FILE}\` in the ` +
      `directory it was started from, or \`cat <its --data-dir>/${CLUSTER_SECRET_FILE}\`.`,
  ].join('\n');
}

/**
 * The cluster secret of a worker that was given none: the one kept in the data dir, when the controller is
 * on this machine. Throws, with the command to run and where the secret is, when it cannot be found or
 * must not be used. Returns the secret and the file it came from.
 */
export function findWorkerSecret(search: SecretSearch): { secret: string; file: string } {
  const file = clusterSecretPath(search.dataDir);
  if (!isThisMachine(search.controllerHost)) {
    throw new Error(
      `no cluster secret: the controller (${search.controllerHost}) is not on this machine, so its secret ` +
        `cannot be read here.\n${howToPass(search.argv)}`,
    );
  }
  let secret: string | null;
  try {
    secret = readKeptSecret(search.dataDir, { privateFolder: true });
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}.\n${howToPass(search.argv)}`);
  }
  if (secret === null) {
    throw new Error(
      `no cluster secret: none in ${file}, where a server started from this directory keeps it (a server ` +
        'started with --data-dir keeps it there: give the worker the same --data-dir; one started with --secret ' +
        `or DPIP_SECRET keeps none).\n${howToPass(search.argv)}`,
    );
  }
  return { secret, file };
}
