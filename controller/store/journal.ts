import { closeSync, type createReadStream, fdatasync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { COLLECTIONS, type Collection, type Data } from './schema.js';

const COLLECTION_NAMES: ReadonlySet<string> = new Set<string>(COLLECTIONS);

/** One line of the journal: a record's new value, or its deletion. */
export interface Entry {
  c: Collection;
  k: string;
  v?: unknown;
  d?: 1;
}

export function isEntry(value: unknown): value is Entry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry.c === 'string' &&
    COLLECTION_NAMES.has(entry.c) &&
    typeof entry.k === 'string' &&
    entry.k !== '__proto__' &&
    ('v' in entry || entry.d === 1)
  );
}

export interface Replay {
  /** Lines applied. */
  applied: number;
  /** Lines that could not be applied (torn by a crash, or not an entry), skipped. */
  skipped: number;
}

/**
 * Replays the journal onto the snapshot, line by line as it streams in (a long journal is never one
 * string). Entries carry whole records, so replaying one twice is harmless. A line that cannot be
 * applied is skipped and the replay goes on: a later line was written after it, by a commit that
 * succeeded. (A torn line can only be the last one: a failed append is cut back.)
 */
export async function replayJournal(file: string, data: Data): Promise<Replay> {
  const replay: Replay = { applied: 0, skipped: 0 };
  let input: ReturnType<typeof createReadStream>;
  try {
    const handle = await open(file, 'r');
    input = handle.createReadStream({ encoding: 'utf8' });
  } catch {
    return replay;
  }
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (!line) continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      entry = null;
    }
    if (!isEntry(entry)) {
      replay.skipped += 1;
      continue;
    }
    const records = data[entry.c] as Record<string, unknown>;
    if (entry.d) delete records[entry.k];
    else records[entry.k] = entry.v;
    replay.applied += 1;
  }
  return replay;
}

/** The journal lines of the records changed: each as it is now, or its deletion. */
export function journalLines(data: Data, changes: ReadonlyMap<Collection, { keys(): Iterable<string> }>): string {
  let text = '';
  for (const [collection, keys] of changes) {
    const records = data[collection] as Record<string, unknown>;
    for (const key of keys.keys()) {
      const entry: Entry = Object.hasOwn(records, key)
        ? { c: collection, k: key, v: records[key] }
        : { c: collection, k: key, d: 1 };
      text += `${JSON.stringify(entry)}\n`;
    }
  }
  return text;
}

/**
 * The append-only file. An append is a synchronous write: a commit's few hundred bytes reach the page
 * cache in microseconds, less than one trip through the thread pool would cost. A failed append is cut
 * back to where it started, so the file never keeps half a commit. `sync` makes what was appended
 * durable (fdatasync, in the thread pool): a group commit resolves only after it.
 */
export class JournalFile {
  private fd: number | null = null;
  bytes = 0;

  constructor(private readonly file: string) {}

  append(text: string): void {
    const fd = this.open();
    const buffer = Buffer.from(text);
    const start = this.bytes;
    try {
      let written = 0;
      while (written < buffer.length)
        written += writeSync(fd, buffer, written, buffer.length - written, start + written);
    } catch (error) {
      try {
        this.cutBack(start);
      } catch {
        // the file could not be cut back: the replay skips the torn line; appends go on at the real end
        this.bytes = fstatSync(fd).size;
      }
      throw error;
    }
    this.bytes += buffer.length;
  }

  /** Makes every append so far durable. */
  sync(): Promise<void> {
    const fd = this.open();
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  /** Drops everything after `offset` (a commit that did not land whole). */
  cutBack(offset: number): void {
    ftruncateSync(this.open(), offset);
    this.bytes = offset;
  }

  async truncate(): Promise<void> {
    this.cutBack(0);
    await this.sync();
  }

  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }

  private open(): number {
    if (this.fd === null) {
      // holds users' password hashes: readable by the server's user only
      this.fd = openSync(this.file, 'a+', 0o600);
      this.bytes = fstatSync(this.fd).size;
    }
    return this.fd;
  }
}

/**
 * The journal's segments in `dataDir`, oldest first: `db.journal` (as older versions wrote it), then
 * `db.journal.<n>`.
 */
export async function journalSegments(dataDir: string): Promise<{ path: string; number: number }[]> {
  const segments: { path: string; number: number }[] = [];
  for (const name of await readdir(dataDir)) {
    const match = /^db\.journal(?:\.(\d{1,9}))?$/.exec(name);
    if (match) segments.push({ path: path.join(dataDir, name), number: Number(match[1] ?? 0) });
  }
  return segments.sort((a, b) => a.number - b.number);
}

export function segmentPath(dataDir: string, number: number): string {
  return path.join(dataDir, `db.journal.${number}`);
}
