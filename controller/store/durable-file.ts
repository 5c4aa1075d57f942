import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** Makes a directory's entries durable: a file renamed into it survives a power loss once this resolves. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `contents` so that, whatever happens (a crash, a power loss, a full disk), the
 * file holds either the old contents or the new, whole: a temporary file beside it (mode 0600) is
 * written and synced, renamed over it, and the directory is synced.
 */
export async function writeDurably(file: string, contents: string | Buffer): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(contents);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(file));
}

/**
 * Directory syncs, grouped: a sync asked for while another of the same directory runs waits for one
 * more that starts after it (a rename made before the ask is then covered), shared by everyone who
 * asked in the meantime. Many uploads into one workload's folder cost a few syncs, not one each.
 */
export class DirectorySyncs {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    const waiting = this.waiting.get(dir);
    if (waiting) return waiting;
    const before = this.running.get(dir) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(() => {
        this.waiting.delete(dir);
        const run = syncDirectory(dir);
        this.running.set(dir, run);
        return run.finally(() => {
          if (this.running.get(dir) === run) this.running.delete(dir);
        });
      });
    this.waiting.set(dir, next);
    return next;
  }
}
