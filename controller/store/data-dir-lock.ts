import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
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
 * `bound`: a process on this machine holds its socket (see holdName), whatever `LOCK` says yet.
 */
export function dataDirHeld(dataDir: string, bound = false): string | null {
  const file = path.join(dataDir, LOCK_FILE);
  const holder = readHolder(file);
  if (holder && holder.host !== hostname())
    return (
      `the data dir ${dataDir} is held by a server on ${holder.host} (pid ${holder.pid}, since ${holder.since}): ` +
      `stop it first; if none runs there any more, remove ${file}`
    );
  const live = holder && holder.pid !== process.pid && alive(holder.pid);
  if (!bound && !live) return null;
  // a holder that has not written LOCK yet, or any process that bound the socket: `ss -xlp` names it
  const who = live
    ? `another process (pid ${holder.pid}, since ${holder.since})`
    : 'another process (`ss -xlp | grep dpip-data-dir` shows which)';
  return `${who} holds the data dir ${dataDir}: stop that server first, or give this one a --data-dir of its own`;
}

/** How long a start waits for the holder to go (a restart whose old server is still stopping) before refusing. */
const HOLDER_GRACE_MS = 5_000;
const HOLDER_POLL_MS = 100;

/** This process's holds, by data dir: one however often it is opened (a restart in place). */
const holds = new Map<string, { socket: Server | null; count: number }>();

/**
 * The name that holds a data dir on this machine: a socket in Linux's abstract namespace (no file), bound by
 * one process at a time and freed by the kernel when that process ends, however it ends. Null elsewhere.
 */
function holdName(dataDir: string): string | null {
  if (process.platform !== 'linux') return null;
  const digest = createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 32);
  return `\0dpip-data-dir-${digest}`;
}

/** Binds the name: the socket, or null when a live process has it. */
function bindName(name: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const socket = createServer((connection) => connection.destroy());
    socket.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(null) : reject(error),
    );
    socket.listen({ path: name }, () => resolve(socket.unref()));
  });
}

/**
 * Holds the lowdb data dir for this process (two servers on one data dir would each write the journal under the
 * other): refused with the reason when another live process still holds it after HOLDER_GRACE_MS. On Linux the
 * hold itself is the data dir's abstract socket (see holdName), so that of servers starting at the same instant
 * exactly one gets it, and a killed holder's is free at once; `LOCK` then names the holder for the others'
 * messages and for servers on other machines (a shared folder), whose lock is refused. Elsewhere `LOCK` alone
 * holds it, and a lock left by a process that is gone is taken over. Returns the release.
 */
export async function lockDataDir(dataDir: string, graceMs = HOLDER_GRACE_MS): Promise<() => void> {
  const file = path.join(dataDir, LOCK_FILE);
  const socketName = holdName(dataDir);
  const name = socketName ?? file;
  let hold = holds.get(name);
  if (hold) hold.count++;
  else {
    hold = { socket: await takeHold(dataDir, socketName, Date.now() + graceMs), count: 1 };
    holds.set(name, hold);
  }
  const mine: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  // whole or not at all: written aside, then renamed over what a gone holder left
  const aside = path.join(dataDir, `.${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(aside, JSON.stringify(mine), { mode: 0o600 });
  renameSync(aside, file);
  const held = hold;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--held.count > 0) return;
    holds.delete(name);
    if (readHolder(file)?.pid === process.pid) unlinkSync(file);
    held.socket?.close();
  };
}

/** Waits until this process is the data dir's one holder on this machine (`name`: its socket, if any). */
async function takeHold(dataDir: string, name: string | null, deadline: number): Promise<Server | null> {
  for (;;) {
    const socket = name ? await bindName(name) : null;
    const held = dataDirHeld(dataDir, name !== null && socket === null);
    if (!held) return socket;
    socket?.close();
    if (Date.now() >= deadline) throw new Error(held);
    await new Promise((resolve) => setTimeout(resolve, HOLDER_POLL_MS));
  }
}
