// Files on a local disk, written durably and read back, with as few trips through libuv's thread pool as the
// work allows. Each trip costs a pool thread's wake-up and the main thread's (0.05-0.15 ms of CPU each on the
// 2-vCPU machine of BENCHMARKS.md, where the system calls themselves cost microseconds): an asynchronous
// readFile is four trips, a durable write eight. Here opening, writing into the page cache, renaming, reading
// and closing are synchronous; only the syncs, which wait for the disk, and reads of large files go to the pool.
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, fsync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** Files up to this size are read synchronously: copying them from the page cache takes well under 1 ms. */
const SYNC_READ_BYTES = 4 * 1024 * 1024;

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

/** Makes a directory's entries durable: a file renamed into it survives a power loss once this resolves. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
  } finally {
    closeSync(fd);
  }
}

/** Syncs the data of an existing file. */
export async function syncFile(file: string): Promise<void> {
  const fd = openSync(file, 'r');
  try {
    await datasync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates `file` (it must not exist) with `data`, synced. On failure nothing is left at `file`. */
export async function writeNewFile(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(file, 'wx', mode);
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      await datasync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    rmSync(file, { force: true });
    throw error;
  }
}

/**
 * Puts `data` at `file` so that, whatever happens (a crash, a power loss, a full disk), the file is there
 * whole or as it was: a temporary file beside it (a dot name) is written and synced, renamed over it, and the
 * folder is synced (unless `syncFolder` is false: then whoever takes the file makes its name durable). An abort
 * before the rename leaves `file` as it was.
 */
export async function writeDurably(
  file: string,
  data: string | Buffer,
  options: { mode?: number; signal?: AbortSignal; syncFolder?: boolean } = {},
): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeNewFile(temporary, data, options.mode);
  try {
    options.signal?.throwIfAborted();
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  if (options.syncFolder !== false) await syncDirectory(path.dirname(file));
}

/** The whole file: read synchronously up to SYNC_READ_BYTES, in the thread pool beyond. */
export async function readLocalFile(file: string, signal?: AbortSignal): Promise<Buffer> {
  const fd = openSync(file, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
    if (size <= SYNC_READ_BYTES) return readAll(fd, size);
  } finally {
    closeSync(fd);
  }
  return readFile(file, { signal });
}

/**
 * The file's size and its first `headBytes` bytes (fewer if it is shorter), or null if there is no such file.
 * The size is that of the file opened, so a file replaced meanwhile is described whole, old or new.
 */
export function readHead(file: string, headBytes: number): { size: number; head: Buffer } | null {
  const fd = openIfThere(file);
  if (fd === null) return null;
  try {
    const { size } = fstatSync(fd);
    return { size, head: readAll(fd, Math.min(size, headBytes)) };
  } finally {
    closeSync(fd);
  }
}

/** The file opened for reading, or null when there is no such file. */
export function openIfThere(file: string): number | null {
  try {
    return openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Up to `length` bytes from the start of `fd` (fewer if the file ends first). */
function readAll(fd: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, buffer, filled, length - filled, filled);
    if (read === 0) break;
    filled += read;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}
