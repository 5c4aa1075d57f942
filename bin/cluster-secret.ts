// The cluster secret the server keeps in its data dir: where it is, and reading it only when nobody else
// on the machine could have read it (or put it there).
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';

export const DEFAULT_DATA_DIR = 'data';
export const CLUSTER_SECRET_FILE = 'cluster-secret';
const MAX_SECRET_BYTES = 4096;

export function clusterSecretPath(dataDir: string): string {
  return path.join(dataDir, CLUSTER_SECRET_FILE);
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/**
 * Why `what` (the secret file, or its folder) cannot be trusted with the secret, or null: it must belong to
 * this user, and give no access to the group or to others (0600 for the file, 0700 for its folder).
 */
function privacyProblem(stats: Stats, what: string, fix: string): string | null {
  const uid = process.getuid?.();
  // permissions of this kind do not exist on Windows
  if (uid === undefined) return null;
  if (stats.uid !== uid) return `${what} belongs to another user (uid ${stats.uid}, this is uid ${uid})`;
  if ((stats.mode & 0o077) !== 0)
    return `${what} can be read or changed by other users (mode ${octal(stats.mode)}): make it private with \`${fix}\``;
  return null;
}

export interface KeptSecretOptions {
  /** Also require the data dir to be private (0700): a worker reading the server's secret does. */
  privateFolder: boolean;
}

/**
 * The secret kept in `<dataDir>/cluster-secret`, or null when there is none. Throws, with what to do, when
 * the file or (if asked) its folder is open to other users: a secret others could read is no secret, and
 * one they could replace is not the server's. The file is opened without following a symbolic link and
 * checked on the open descriptor, so it cannot be swapped between the check and the read.
 */
export function readKeptSecret(dataDir: string, options: KeptSecretOptions): string | null {
  const file = clusterSecretPath(dataDir);
  if (options.privateFolder) {
    let folder: Stats;
    try {
      folder = statSync(dataDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const problem = privacyProblem(folder, `the data dir ${dataDir}`, `chmod 700 ${dataDir}`);
    if (problem) throw new Error(`${problem}: the cluster secret in it is not used`);
  }
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new Error(`${file} is a symbolic link: the cluster secret must be a file of its own`);
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new Error(`${file} is not a file`);
    const problem = privacyProblem(stats, file, `chmod 600 ${file}`);
    if (problem) throw new Error(`${problem}: a secret others may have read or put there is not used`);
    const buffer = Buffer.alloc(MAX_SECRET_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString('utf8').trim() || null;
  } finally {
    closeSync(fd);
  }
}
