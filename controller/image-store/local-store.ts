import { randomUUID } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readHead, syncFile, writeNewFile } from '../../common/local-files.js';
import { STORE_ID_FILE } from '../../common/protocol.js';
import { DirectorySyncs } from '../store/index.js';
import { ImageStoreConfigError } from './errors.js';
import type { ImageStore, IncomingContent, OpenedObject, PresignedUrl, StoredObject } from './types.js';

/** A folder's removal that found it filled meanwhile starts over up to this many times, 10, 20 ... ms apart. */
const REMOVE_RETRIES = 8;
const REMOVE_RETRY_MS = 10;

/**
 * The image files under <images dir>/<workload name>/, written durably: a file is synced before it
 * takes its name and its directory after, so a record committed after `put` never points at a file a
 * power loss can take. Files are only ever created under fresh names, never replaced.
 */
export class LocalImageStore implements ImageStore {
  readonly kind = 'local';
  readonly presigns = false;
  private readonly knownDirs = new Set<string>();
  private readonly directorySyncs = new DirectorySyncs();
  /** Uploads land here first, on the same file system as their final place, so keeping one is a rename. */
  private readonly stagingDir: string;

  constructor(readonly root: string) {
    // workload names start with a letter or digit, so no workload directory can be this one
    this.stagingDir = path.join(root, '.incoming');
  }

  get where(): string {
    return `folder ${this.root}`;
  }

  async check(): Promise<void> {
    const probe = path.join(this.root, `.probe-${randomUUID()}`);
    try {
      await mkdir(this.root, { recursive: true });
      await writeFile(probe, 'probe');
      await readFile(probe);
      await unlink(probe);
    } catch (error) {
      await rm(probe, { force: true }).catch(() => undefined);
      const reason = error instanceof Error ? error.message : String(error);
      throw new ImageStoreConfigError(`cannot write, read and delete in the images folder ${this.root}: ${reason}`);
    }
  }

  /**
   * At start: empties the staging directory (nothing in it was ever acknowledged), removes the folders of
   * workloads that do not exist (deleted by a process killed before it removed them) and every file no
   * record points at (kept by a process killed before its record committed), and makes the folders that
   * are missing. Returns how many files were removed.
   */
  async prepare(referenced: ReadonlySet<string>, folders: ReadonlySet<string>, graceMs: number): Promise<number> {
    const youngerThan = Date.now() - graceMs;
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
    let removed = 0;
    const missing = new Set(folders);
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === '.incoming') continue;
      missing.delete(entry.name);
      const files = await readdir(path.join(this.root, entry.name));
      if (!folders.has(entry.name)) {
        await rm(path.join(this.root, entry.name), { recursive: true, force: true });
        removed += files.length;
        continue;
      }
      for (const file of files) {
        if (referenced.has(path.posix.join(entry.name, file))) continue;
        if (graceMs > 0 && (await modifiedAt(path.join(this.root, entry.name, file))) > youngerThan) continue;
        await rm(path.join(this.root, entry.name, file), { recursive: true, force: true });
        removed += 1;
      }
    }
    // every workload has its folder, those created before folders were made at creation too
    for (const name of missing) await mkdir(path.join(this.root, name), { recursive: true });
    return removed;
  }

  /** A fresh path to stream an upload to before `put` keeps it. */
  stagingPath(): string {
    return path.join(this.stagingDir, randomUUID());
  }

  /** Removes a staged upload that was not kept (refused, or failed); a kept one is already gone. */
  async discardStaged(staged: string): Promise<void> {
    if (path.dirname(staged) !== this.stagingDir) return;
    await unlink(staged).catch(() => undefined);
  }

  /**
   * Puts the bytes at `file` (relative to the root), a fresh name, durably. Bytes in memory (an upload
   * small enough to stay there, at most 512 KiB) are written synchronously: copying them into the page
   * cache takes microseconds, where an asynchronous open, write and close were three trips through the
   * thread pool; only the sync goes there. On failure nothing is left at `file`.
   */
  async put(content: IncomingContent, file: string, _mime?: string): Promise<void> {
    const target = path.join(this.root, file);
    await this.ensureDir(path.dirname(target));
    try {
      if (content.kind === 'staged') {
        await syncFile(content.path);
        renameSync(content.path, target);
      } else {
        await writeNewFile(target, content.data);
      }
      await this.directorySyncs.sync(path.dirname(target));
    } catch (error) {
      rmSync(target, { force: true });
      throw error;
    }
  }

  /** Removes a file that was put but not kept (its record was refused, or did not commit), or was deleted. */
  async remove(file: string): Promise<void> {
    await rm(path.join(this.root, file), { force: true });
  }

  /** A new workload's folder, made durably (its name was checked: see validateWorkloadName). */
  async makeFolder(name: string): Promise<void> {
    const dir = path.join(this.root, name);
    await mkdir(dir, { recursive: true });
    await this.directorySyncs.sync(this.root);
    this.knownDirs.add(dir);
  }

  /**
   * A deleted workload's folder, with whatever is in it. A worker may still rename a result into it meanwhile
   * (by path): the folder's last step then finds it not empty, and the removal starts over, a few times with a
   * growing pause (node's own retry of ENOTEMPTY), which outlasts the results of the jobs it was running.
   */
  async removeFolder(name: string): Promise<void> {
    const dir = path.join(this.root, name);
    this.knownDirs.delete(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: REMOVE_RETRIES, retryDelay: REMOVE_RETRY_MS });
  }

  /**
   * The folder of a workload that no longer exists, once a late file in it was removed: gone if empty (a
   * file put while the folder was being removed can have made it again).
   */
  async removeFolderIfEmpty(name: string): Promise<void> {
    const dir = path.join(this.root, name);
    this.knownDirs.delete(dir);
    await rmdir(dir).catch(() => undefined);
  }

  localPath(key: string): string {
    return path.join(this.root, key);
  }

  async folderId(): Promise<string> {
    const file = path.join(this.root, STORE_ID_FILE);
    const known = await readFile(file, 'utf8').catch(() => null);
    if (known?.trim()) return known.trim();
    await mkdir(this.root, { recursive: true });
    const id = randomUUID();
    // written aside and renamed: a worker reading it meanwhile sees no id or the whole id
    const aside = `${file}.${id}`;
    await writeFile(aside, id);
    await syncFile(aside);
    await rename(aside, file);
    await this.directorySyncs.sync(this.root);
    return (await readFile(file, 'utf8')).trim();
  }

  async open(key: string): Promise<OpenedObject | null> {
    const file = this.localPath(key);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const { size } = await handle.stat();
    if (size === 0) {
      await handle.close();
      return { size, body: Readable.from([]) };
    }
    // the stream owns the handle from here: it closes it at its end, or when destroyed; the length is
    // that of the file opened, so a file replaced meanwhile is sent whole, old or new
    return { size, body: handle.createReadStream({ start: 0, end: size - 1 }) };
  }

  async inspect(key: string, headBytes: number): Promise<StoredObject | null> {
    return readHead(this.localPath(key), headBytes);
  }

  /** A file a worker wrote and synced by path, renamed into its folder: the folder's sync makes its name stay. */
  settle(key: string): Promise<void> {
    return this.directorySyncs.sync(path.dirname(this.localPath(key)));
  }

  presign(): Promise<PresignedUrl> {
    return Promise.reject(new Error('a local images folder has no presigned URLs: its bytes go through the API'));
  }

  /** mkdir once per workload directory, not once per file (it showed in profiles). */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }
}

async function modifiedAt(file: string): Promise<number> {
  return (await stat(file).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
}
