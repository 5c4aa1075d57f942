import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/** The file a server holding a lowdb data dir keeps in it: `{"pid", "host", "since"}`. */
export const LOCK_FILE = 'LOCK';

interface Holder {
  pid: number;
  host: string;
  since: string;
}

function readHolder(file: string): Holder | null {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof value !== 'object' || value === null) return null;
    const { pid, host, since } = value as Record<string, unknown>;
    if (!Number.isSafeInteger(pid) || typeof host !== 'string' || typeof since !== 'string') return null;
    return { pid: pid as number, host, since };
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why the data dir may not be used by this process: another live process holds it, on this machine or (with the
 * folder shared) another one; null when it is free, held by this process, or held by a process that is gone.
 */
export function dataDirHeld(dataDir: string): string | null {
  const file = path.join(dataDir, LOCK_FILE);
  const holder = readHolder(file);
  if (!holder) return null;
  if (holder.host !== hostname())
    return (
      `the data dir ${dataDir} is held by a server on ${holder.host} (pid ${holder.pid}, since ${holder.since}): ` +
      `stop it first; if none runs there any more, remove ${file}`
    );
  if (holder.pid === process.pid || !alive(holder.pid)) return null;
  return (
    `another process (pid ${holder.pid}, since ${holder.since}) holds the data dir ${dataDir}: ` +
    'stop that server first, or give this one a --data-dir of its own'
  );
}

/** How long a start waits for the holder to go (a restart whose old server is still stopping) before refusing. */
const HOLDER_GRACE_MS = 5_000;
const HOLDER_POLL_MS = 100;

/**
 * Holds the lowdb data dir for this process (two servers on one data dir would each write the journal under the
 * other): refused with the reason when another live process still holds it after HOLDER_GRACE_MS; a lock left by
 * a process that is gone (a kill, a crash) is taken over. Returns the release, which leaves a lock another
 * process has taken meanwhile.
 */
export async function lockDataDir(dataDir: string, graceMs = HOLDER_GRACE_MS): Promise<() => void> {
  const file = path.join(dataDir, LOCK_FILE);
  const mine: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const deadline = Date.now() + graceMs;
  // whole or not at all: written aside once, then linked into place (a link never replaces a file that is there)
  const aside = path.join(dataDir, `.${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(aside, JSON.stringify(mine), { mode: 0o600 });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        try {
          linkSync(aside, file);
        } catch (error) {
          // a filesystem without hard links: an exclusive create, its content written just after
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
          writeFileSync(file, JSON.stringify(mine), { mode: 0o600, flag: 'wx' });
        }
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1000) throw error;
      }
      const held = dataDirHeld(dataDir);
      if (held && Date.now() >= deadline) throw new Error(held);
      if (held) await new Promise((resolve) => setTimeout(resolve, HOLDER_POLL_MS));
      else {
        // stale (or unreadable): take it over
        try {
          unlinkSync(file);
        } catch {
          // another process took it over first: the next attempt says so
        }
      }
    }
  } finally {
    unlinkSync(aside);
  }
  return () => {
    const now = readHolder(file);
    if (now?.pid === mine.pid && now.since === mine.since) unlinkSync(file);
  };
}
