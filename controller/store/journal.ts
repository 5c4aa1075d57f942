import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Collection, Data } from './schema.js';

const COLLECTIONS: ReadonlySet<string> = new Set<Collection>([
  'users',
  'revoked_tokens',
  'workers',
  'workloads',
  'images',
  'jobs',
]);

/** One line of the journal: a record's new value, or its deletion. */
interface Entry {
  c: Collection;
  k: string;
  v?: unknown;
  d?: 1;
}

function isEntry(value: unknown): value is Entry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry.c === 'string' &&
    COLLECTIONS.has(entry.c) &&
    typeof entry.k === 'string' &&
    entry.k !== '__proto__' &&
    ('v' in entry || entry.d === 1)
  );
}

/**
 * Replays the journal onto the snapshot. Entries carry whole records, so replaying one twice is
 * harmless. A line that does not parse is a write torn by a crash: it and anything after it are ignored.
 */
export async function replayJournal(file: string, data: Data): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return 0;
  }
  let applied = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      break;
    }
    if (!isEntry(entry)) break;
    const records = data[entry.c] as Record<string, unknown>;
    if (entry.d) delete records[entry.k];
    else records[entry.k] = entry.v;
    applied += 1;
  }
  return applied;
}

export function journalLines(data: Data, changes: Map<Collection, Set<string>>): string {
  let text = '';
  for (const [collection, keys] of changes) {
    const records = data[collection] as Record<string, unknown>;
    for (const key of keys) {
      const entry: Entry = Object.hasOwn(records, key)
        ? { c: collection, k: key, v: records[key] }
        : { c: collection, k: key, d: 1 };
      text += `${JSON.stringify(entry)}\n`;
    }
  }
  return text;
}

/**
 * The append-only file: appends go to the OS at once, so a killed process loses nothing it
 * acknowledged. They are synchronous writes: a commit's few hundred bytes reach the page cache in
 * microseconds, less than one trip through the thread pool would cost.
 */
export class JournalFile {
  private fd: number | null = null;
  bytes = 0;

  constructor(private readonly file: string) {}

  append(text: string): void {
    this.fd ??= openSync(this.file, 'a');
    const buffer = Buffer.from(text);
    let written = 0;
    while (written < buffer.length) written += writeSync(this.fd, buffer, written);
    this.bytes += buffer.length;
  }

  async truncate(): Promise<void> {
    this.close();
    await writeFile(this.file, '');
    this.bytes = 0;
  }

  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }
}
