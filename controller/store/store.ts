import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { emptyData, type Data } from './schema.js';

export interface Store {
  readonly data: Data;
  /** Persist every change made so far; resolves once they are on disk. Calls close together share one write. */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/**
 * lowdb keeps the document in memory and writes it atomically (temp file + rename), so a crash
 * never leaves a torn file. Writes are coalesced: while one is in flight, every commit that
 * arrives waits for the single next write, which carries all of them.
 */
export async function openStore(dataDir: string): Promise<Store> {
  await mkdir(dataDir, { recursive: true });
  const db = new Low<Data>(new JSONFile<Data>(path.join(dataDir, 'db.json')), emptyData());
  await db.read();
  db.data = { ...emptyData(), ...db.data };

  let writing: Promise<void> | null = null;
  let next: Promise<void> | null = null;

  function commit(): Promise<void> {
    if (next) return next;
    const after = (writing ?? Promise.resolve()).catch(() => undefined);
    next = after.then(async () => {
      next = null;
      writing = db.write();
      try {
        await writing;
      } finally {
        writing = null;
      }
    });
    return next;
  }

  return {
    get data() {
      return db.data;
    },
    commit,
    async close() {
      await commit();
    },
  };
}
