import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Adapter } from 'lowdb';
import { syncDirectory } from '../../common/local-files.js';
import { isEntry } from './journal.js';
import type { KeyIndex } from './key-index.js';
import { COLLECTIONS, emptyData, type Data } from './schema.js';

export const SNAPSHOT_FILE = 'db.snapshot';
/** The snapshot as older versions wrote it: one JSON document. Read once, then replaced. */
export const LEGACY_SNAPSHOT_FILE = 'db.json';

const HEADER = { dpip_snapshot: 1 };
/** Past this much work in one go, the writer lets the event loop run. */
const SLICE_MS = 8;
const CHUNK_CHARS = 1 << 20;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function damaged(file: string, reason: string): Error {
  return new Error(
    `the datastore's snapshot ${file} cannot be read: ${reason}. Restore it from a backup, or move it aside ` +
      'to start from the journal alone (what only the snapshot held is then lost).',
  );
}

/**
 * lowdb's adapter for the snapshot, which is never one string: JSON lines, one record a line (the
 * journal's format), between a header and an end line that counts them. It is streamed in and out,
 * and the writer yields to the event loop every few milliseconds, so a snapshot of a million records
 * stalls nothing. The writer walks the key index (Sets that can be walked while they change); the
 * store rotates the journal first, so every change made while a snapshot streams out is in the new
 * journal segment, and replaying it over this fuzzy snapshot gives the exact state. Written to a
 * temporary file (mode 0600), synced, renamed into place, folder synced: whole or not at all.
 */
export class StreamedSnapshot implements Adapter<Data> {
  /** Characters of the last snapshot read or written. */
  size = 0;
  /** Records in the last snapshot read or written. */
  records = 0;
  /** The store read an older db.json: the next snapshot replaces it. */
  legacy = false;
  private readonly file: string;
  private readonly legacyFile: string;

  constructor(
    private readonly dataDir: string,
    private readonly keys: () => KeyIndex,
  ) {
    this.file = path.join(dataDir, SNAPSHOT_FILE);
    this.legacyFile = path.join(dataDir, LEGACY_SNAPSHOT_FILE);
  }

  async read(): Promise<Data | null> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.readLegacy();
      throw error;
    }
    const data = emptyData();
    let lines = 0;
    let records = 0;
    let end: number | null = null;
    for await (const line of createInterface({ input: handle.createReadStream({ encoding: 'utf8' }) })) {
      lines += 1;
      this.size += line.length + 1;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw damaged(this.file, `line ${lines} does not parse`);
      }
      if (lines === 1) {
        if ((value as { dpip_snapshot?: unknown } | null)?.dpip_snapshot !== 1) throw damaged(this.file, 'no header');
        continue;
      }
      if (end !== null) throw damaged(this.file, 'lines after its end');
      if (typeof (value as { end?: unknown } | null)?.end === 'number') {
        end = (value as { end: number }).end;
        continue;
      }
      if (!isEntry(value) || value.d) throw damaged(this.file, `line ${lines} is not a record`);
      (data[value.c] as Record<string, unknown>)[value.k] = value.v;
      records += 1;
    }
    if (end === null) throw damaged(this.file, lines === 0 ? 'it is empty' : 'it ends before its end line');
    if (end !== records) throw damaged(this.file, `it holds ${records} records, its end line says ${end}`);
    this.records = records;
    return data;
  }

  async write(data: Data): Promise<void> {
    const temporary = path.join(this.dataDir, `.${SNAPSHOT_FILE}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o600);
    let size = 0;
    let written = 0;
    try {
      let chunk = `${JSON.stringify(HEADER)}\n`;
      let records = 0;
      let sliceStart = performance.now();
      const keys = this.keys();
      for (const collection of COLLECTIONS) {
        const recordsOf = data[collection] as Record<string, unknown>;
        for (const key of keys.of(collection)) {
          if (!Object.hasOwn(recordsOf, key)) continue;
          chunk += `${JSON.stringify({ c: collection, k: key, v: recordsOf[key] })}\n`;
          records += 1;
          if (chunk.length >= CHUNK_CHARS) {
            size += chunk.length;
            await handle.write(chunk);
            chunk = '';
            sliceStart = performance.now();
          } else if ((records & 255) === 0 && performance.now() - sliceStart > SLICE_MS) {
            await yieldToEventLoop();
            sliceStart = performance.now();
          }
        }
      }
      chunk += `${JSON.stringify({ end: records })}\n`;
      written = records;
      size += chunk.length;
      await handle.write(chunk);
      await handle.sync();
      await handle.close();
      await rename(temporary, this.file);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
      throw error;
    }
    await syncDirectory(this.dataDir);
    this.size = size;
    this.records = written;
    if (this.legacy) {
      await rm(this.legacyFile, { force: true });
      this.legacy = false;
    }
  }

  private async readLegacy(): Promise<Data | null> {
    let text: string;
    try {
      text = await readFile(this.legacyFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    this.legacy = true;
    this.size = text.length;
    try {
      return { ...emptyData(), ...(JSON.parse(text) as Partial<Data>) };
    } catch (error) {
      throw damaged(
        this.legacyFile,
        text.length === 0 ? 'it is empty' : `it does not parse (${(error as Error).message})`,
      );
    }
  }
}
