import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { JournalFile, journalLines, replayJournal } from './journal.js';
import { OriginalsIndex } from './originals.js';
import { WorkloadIndex } from './workload-index.js';
import { emptyData, type Collection, type Data } from './schema.js';

export interface Store {
  readonly data: Data;
  /** Each workload's originals in upload order. */
  readonly originals: OriginalsIndex;
  /** Each owner's workloads, and the names taken. */
  readonly workloadIndex: WorkloadIndex;
  /** Mark a record as changed (or deleted, if it is gone by the next commit). */
  touch(collection: Collection, key: string): void;
  /** Persist every change touched so far; resolves once they are written. Calls close together share one write. */
  commit(): Promise<void>;
  close(): Promise<void>;
  stats(): StoreStats;
}

export interface StoreStats {
  journalBytes: number;
  snapshots: number;
}

export interface StoreOptions {
  /** Write a new snapshot once the journal is this large and larger than the last snapshot. */
  compactBytes: number;
}

const DEFAULT_OPTIONS: StoreOptions = { compactBytes: 8 * 1024 * 1024 };

/**
 * The datastore: lowdb's document in memory, persisted as a snapshot (db.json, written atomically by
 * lowdb: temp file + rename) plus an append-only journal of changed records (db.journal). A commit
 * appends only what changed, so its cost does not grow with history; the snapshot is rewritten only
 * when the journal outgrows it, which keeps the amortized cost per change constant. Commits are
 * coalesced: while one write is in flight, every commit that arrives waits for the single next write.
 */
export async function openStore(dataDir: string, options: Partial<StoreOptions> = {}): Promise<Store> {
  const { compactBytes } = { ...DEFAULT_OPTIONS, ...options };
  await mkdir(dataDir, { recursive: true });
  const db = new Low<Data>(new JSONFile<Data>(path.join(dataDir, 'db.json')), emptyData());
  await db.read();
  db.data = { ...emptyData(), ...db.data };
  const journal = new JournalFile(path.join(dataDir, 'db.journal'));
  let snapshotBytes = 0;
  let snapshots = 0;

  async function snapshot(): Promise<void> {
    await db.write();
    snapshotBytes = JSON.stringify(db.data).length;
    snapshots += 1;
    await journal.truncate();
  }

  // start from one clean snapshot and an empty journal whenever the journal holds anything, even a line
  // torn by a crash and nothing else: a commit appended after a torn fragment would share its line, and
  // be lost with it at the next open
  const journalPath = path.join(dataDir, 'db.journal');
  await replayJournal(journalPath, db.data);
  if ((await stat(journalPath).catch(() => null))?.size) await snapshot();
  else snapshotBytes = JSON.stringify(db.data).length;

  const originals = new OriginalsIndex(db.data);
  const workloadIndex = new WorkloadIndex(db.data);
  let changes = new Map<Collection, Set<string>>();
  let writing: Promise<void> | null = null;
  let next: Promise<void> | null = null;

  async function write(): Promise<void> {
    const batch = changes;
    changes = new Map();
    if (batch.size === 0) return;
    journal.append(journalLines(db.data, batch));
    if (journal.bytes > compactBytes && journal.bytes > snapshotBytes) await snapshot();
  }

  function commit(): Promise<void> {
    if (next) return next;
    const after = (writing ?? Promise.resolve()).catch(() => undefined);
    next = after.then(async () => {
      next = null;
      writing = write();
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
    originals,
    workloadIndex,
    touch(collection, key) {
      let keys = changes.get(collection);
      if (!keys) {
        keys = new Set();
        changes.set(collection, keys);
      }
      keys.add(key);
    },
    commit,
    async close() {
      await commit();
      journal.close();
    },
    stats: () => ({ journalBytes: journal.bytes, snapshots }),
  };
}
