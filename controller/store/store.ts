import { mkdir, rm, stat } from 'node:fs/promises';
import { Low } from 'lowdb';
import { syncDirectory } from '../../common/local-files.js';
import { lockDataDir } from './data-dir-lock.js';
import { JournalFile, journalLines, journalSegments, replayJournal, segmentPath, type Replay } from './journal.js';
import { KeyIndex } from './key-index.js';
import { loadSigningKeyFile } from './signing-key.js';
import { StreamedSnapshot } from './snapshot.js';
import { emptyData, type Data } from './schema.js';
import { trackedStore, type ChangeBatch, type Persistence, type Store, type StoreCore } from './tracked-store.js';

export interface StoreOptions {
  /** Write a new snapshot once the journal is this large and larger than the last snapshot. */
  compactBytes: number;
  /**
   * Once no commit came for this long, write a new snapshot if the journal is larger than the last one
   * (and than 64 KiB), however far below `compactBytes`, or if fewer than half the records of the last
   * snapshot are still there: after deletions the files shrink back to what is kept.
   */
  idleCompactMs: number;
}

const DEFAULT_OPTIONS: StoreOptions = { compactBytes: 8 * 1024 * 1024, idleCompactMs: 5000 };
const IDLE_COMPACT_MIN_BYTES = 64 * 1024;

/**
 * The datastore: lowdb's document in memory, persisted as a snapshot (db.json, written to a temporary file,
 * synced, renamed over the old one) plus an append-only journal of changed records (db.journal). A
 * commit appends only what changed, so its cost does not grow with history; the snapshot is rewritten
 * only when the journal outgrows it, which keeps the amortized cost per change constant. Commits are
 * grouped: while one write is in flight, every commit that arrives waits for the single next write,
 * which also shares one fdatasync.
 */
export async function openStore(dataDir: string, options: Partial<StoreOptions> = {}): Promise<Store> {
  const { compactBytes, idleCompactMs } = { ...DEFAULT_OPTIONS, ...options };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(dataDir);
  try {
    return await openLocked(dataDir, compactBytes, idleCompactMs, unlock);
  } catch (error) {
    unlock();
    throw error;
  }
}

async function openLocked(
  dataDir: string,
  compactBytes: number,
  idleCompactMs: number,
  unlock: () => void,
): Promise<Store> {
  let keys: KeyIndex | null = null;
  const snapshotFile = new StreamedSnapshot(dataDir, () => keys ?? new KeyIndex(emptyData()));
  const db = new Low<Data>(snapshotFile, emptyData());
  await db.read();
  const data = db.data;
  const recovered: Replay = { applied: 0, skipped: 0 };
  const segments = await journalSegments(dataDir);
  let held = 0;
  for (const segment of segments) {
    const replay = await replayJournal(segment.path, data);
    recovered.applied += replay.applied;
    recovered.skipped += replay.skipped;
    held += (await stat(segment.path)).size;
  }
  keys = new KeyIndex(data);
  const indexed = keys;
  /** The segment appends go to; every older one is covered by the next snapshot that lands. */
  let segment = (segments.at(-1)?.number ?? 0) + 1;
  let journal = new JournalFile(segmentPath(dataDir, segment));
  let snapshots = 0;
  let snapshotting: Promise<void> | null = null;

  /**
   * Starts a new journal segment, streams a snapshot, then drops the segments it covers. Commits go on
   * meanwhile, into the new segment. A snapshot that fails (a full disk) leaves every segment in place
   * (nothing is lost) and is tried again after the next commit that finds the journal long.
   */
  function startSnapshot(): Promise<void> {
    const covered = segment;
    segment += 1;
    journal.close();
    journal = new JournalFile(segmentPath(dataDir, segment));
    snapshotting = (async () => {
      try {
        await db.write();
        snapshots += 1;
        for (const old of await journalSegments(dataDir))
          if (old.number <= covered) await rm(old.path, { force: true });
        await syncDirectory(dataDir);
      } finally {
        snapshotting = null;
      }
    })();
    return snapshotting;
  }

  // start from one clean snapshot and an empty journal whenever the journal holds anything (even a line
  // torn by a crash and nothing else), or the snapshot is in the older format
  if (held > 0 || snapshotFile.legacy) await startSnapshot();

  function journalPersistence(core: StoreCore): Persistence {
    let idleTimer: NodeJS.Timeout | null = null;
    let closed = false;

    function scheduleIdleCompaction(): void {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        idleTimer = null;
        const { bytes } = journal;
        const longJournal = bytes > IDLE_COMPACT_MIN_BYTES && bytes > snapshotFile.size;
        const mostlyGone = snapshotFile.size > IDLE_COMPACT_MIN_BYTES && indexed.size < snapshotFile.records / 2;
        if (closed || snapshotting || core.committing() || !(longJournal || mostlyGone)) return;
        startSnapshot().catch(() => undefined);
      }, idleCompactMs);
      idleTimer.unref();
    }

    async function write(batch: ChangeBatch, durable: boolean): Promise<void> {
      const target = journal;
      const start = target.bytes;
      target.append(journalLines(data, batch));
      for (const [collection, changed] of batch)
        for (const key of changed.keys()) indexed.follow(data, collection, key);
      try {
        if (durable) await target.sync();
      } catch (error) {
        target.cutBack(start);
        throw error;
      }
      // a long journal, or a large snapshot whose records are mostly deleted
      const longJournal = target.bytes > compactBytes && target.bytes > snapshotFile.size;
      const mostlyGone = snapshotFile.size > compactBytes && indexed.size < snapshotFile.records / 2;
      if (!snapshotting && (longJournal || mostlyGone)) {
        // in the background: the commit has landed, and the next ones go to the new segment meanwhile
        startSnapshot().catch(() => undefined);
      }
      scheduleIdleCompaction();
    }

    return {
      write,
      restored: (collection, key) => indexed.follow(data, collection, key),
      compact: () => snapshotting ?? startSnapshot(),
      async close() {
        closed = true;
        if (idleTimer) clearTimeout(idleTimer);
        await snapshotting?.catch(() => undefined);
        journal.close();
        unlock();
      },
      stats: () => ({ journalBytes: journal.bytes, snapshots, recovered }),
      signingKey: () => loadSigningKeyFile(dataDir),
    };
  }

  return trackedStore('lowdb', data, journalPersistence);
}
