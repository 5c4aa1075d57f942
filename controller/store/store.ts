import { mkdir, rm, stat } from 'node:fs/promises';
import { Low } from 'lowdb';
import { syncDirectory } from './durable-file.js';
import { JournalFile, journalLines, journalSegments, replayJournal, segmentPath, type Replay } from './journal.js';
import { KeyIndex } from './key-index.js';
import { StreamedSnapshot } from './snapshot.js';
import { OriginalsIndex } from './originals.js';
import { WorkloadIndex } from './workload-index.js';
import { emptyData, type Collection, type Data } from './schema.js';

export interface Store {
  readonly data: Data;
  /** Each workload's originals in upload order. */
  readonly originals: OriginalsIndex;
  /** Each owner's workloads, and the names taken. */
  readonly workloadIndex: WorkloadIndex;
  /**
   * Call before changing, adding or deleting a record: the store remembers the record as it was, so
   * that a commit that fails can put it back.
   */
  change(collection: Collection, key: string): void;
  /** The same, after the change: `before` is the record as it was (a copy), or undefined if it did not exist. */
  changed(collection: Collection, key: string, before: object | undefined): void;
  /**
   * Persist every change so far; resolves once they are durable (written and synced). Calls close together
   * share one write. A commit lands whole or not at all: when it fails, every change not yet on disk is
   * rolled back in memory (the records as they were before `change`) and the promise rejects.
   */
  commit(options?: CommitOptions): Promise<void>;
  /**
   * Writes a snapshot now (streamed; commits go on meanwhile) and drops the journal segments it
   * covers. The store does this by itself when the journal outgrows the last snapshot.
   */
  compact(): Promise<void>;
  /**
   * Called after a failed commit put records back (to rebuild indexes): the keys it restored, and each
   * record as it was just before (undefined where it did not exist).
   */
  onRollback(listener: RollbackListener): void;
  close(): Promise<void>;
  stats(): StoreStats;
}

export interface CommitOptions {
  /**
   * false: the journal is written but not synced for this commit (a later synced commit covers it).
   * For changes a crash may lose because they are re-derived after a restart (an assignment: the job is
   * queued again, and a late result of its lease is refused); never for anything acknowledged.
   */
  durable?: boolean;
}

export type RollbackListener = (
  restored: ReadonlyMap<Collection, readonly string[]>,
  undone: ReadonlyMap<Collection, ReadonlyMap<string, unknown>>,
) => void;

export interface StoreStats {
  journalBytes: number;
  snapshots: number;
  /** What the journal held at the last open. */
  recovered: Replay;
}

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

/** A record that did not exist before the change. */
const ABSENT = Symbol('absent');
/** A record as it was (a copy), and the object itself: put back, even after a deletion, it keeps its identity. */
class Kept {
  constructor(
    readonly copy: unknown,
    readonly ref: unknown,
  ) {}
}
type Before = unknown;
type Batch = Map<Collection, Map<string, Before>>;

interface Group {
  /** One of its commits needs the write synced. */
  durable: boolean;
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function group(): Group {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // a group nobody waits on (a background commit) must not become an unhandled rejection
  promise.catch(() => undefined);
  return { durable: false, promise, resolve, reject };
}

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
  const rollbackListeners: RollbackListener[] = [];

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

  const originals = new OriginalsIndex(data);
  const workloadIndex = new WorkloadIndex(data);
  let changes: Batch = new Map();
  let pending: Group | null = null;
  let writing = false;

  function remember(collection: Collection, key: string, before: () => Before): void {
    let keys = changes.get(collection);
    if (!keys) {
      keys = new Map();
      changes.set(collection, keys);
    }
    if (!keys.has(key)) keys.set(key, before());
  }

  function change(collection: Collection, key: string): void {
    const records = data[collection] as Record<string, unknown>;
    remember(collection, key, () =>
      Object.hasOwn(records, key) ? new Kept(structuredClone(records[key]), records[key]) : ABSENT,
    );
  }

  /** Puts every record of the batches back as it was before its first change (the oldest batch wins). */
  function rollback(...batches: Batch[]): void {
    const undone = new Map<Collection, Map<string, unknown>>();
    for (const batch of batches) {
      for (const [collection, changed] of batch) {
        const records = data[collection] as Record<string, unknown>;
        const done = undone.get(collection) ?? new Map<string, unknown>();
        undone.set(collection, done);
        for (const [key, before] of changed) {
          if (done.has(key)) continue;
          done.set(key, Object.hasOwn(records, key) ? structuredClone(records[key]) : undefined);
          restore(records, key, before);
          indexed.follow(data, collection, key);
        }
      }
    }
    const lists = new Map([...undone].map(([collection, done]) => [collection, [...done.keys()]] as const));
    originals.restore(data, lists.get('images') ?? []);
    workloadIndex.restore(data, undone.get('workloads') ?? new Map());
    for (const listener of rollbackListeners) listener(lists, undone);
  }

  async function write(batch: Batch, durable: boolean): Promise<void> {
    if (batch.size === 0) return;
    const target = journal;
    const start = target.bytes;
    target.append(journalLines(data, batch));
    for (const [collection, changed] of batch) for (const key of changed.keys()) indexed.follow(data, collection, key);
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

  let idleTimer: NodeJS.Timeout | null = null;
  let closed = false;
  function scheduleIdleCompaction(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idleTimer = null;
      const { bytes } = journal;
      const longJournal = bytes > IDLE_COMPACT_MIN_BYTES && bytes > snapshotFile.size;
      const mostlyGone = snapshotFile.size > IDLE_COMPACT_MIN_BYTES && indexed.size < snapshotFile.records / 2;
      if (closed || snapshotting || pending || !(longJournal || mostlyGone)) return;
      startSnapshot().catch(() => undefined);
    }, idleCompactMs);
    idleTimer.unref();
  }

  async function flush(): Promise<void> {
    writing = true;
    try {
      while (pending) {
        const current = pending;
        pending = null;
        const batch = changes;
        changes = new Map();
        try {
          await write(batch, current.durable);
          current.resolve();
        } catch (error) {
          // nothing of it is on disk: it goes back, and so does every change made since, which was
          // made on top of it and whose commit would follow it
          const later = changes;
          changes = new Map();
          rollback(batch, later);
          current.reject(error);
          const waiting = pending as Group | null;
          waiting?.reject(error);
          pending = null;
        }
      }
    } finally {
      writing = false;
    }
  }

  function commit(options: CommitOptions = {}): Promise<void> {
    if (!pending) {
      pending = group();
      if (!writing) {
        writing = true;
        // after this tick: changes made right after the call still join this write
        queueMicrotask(() => void flush());
      }
    }
    if (options.durable !== false) pending.durable = true;
    return pending.promise;
  }

  return {
    data,
    originals,
    workloadIndex,
    compact: () => snapshotting ?? startSnapshot(),
    change,
    changed: (collection, key, before) => remember(collection, key, () => before ?? ABSENT),
    commit,
    onRollback(listener) {
      rollbackListeners.push(listener);
    },
    async close() {
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
      await commit().catch(() => undefined);
      await snapshotting?.catch(() => undefined);
      journal.close();
    },
    stats: () => ({ journalBytes: journal.bytes, snapshots, recovered }),
  };
}

/** Puts one record back in place: an object keeps its identity (others may hold it), with its old fields. */
function restore(records: Record<string, unknown>, key: string, before: Before): void {
  if (before === ABSENT) {
    delete records[key];
    return;
  }
  const copy = before instanceof Kept ? before.copy : before;
  const current = before instanceof Kept ? before.ref : Object.hasOwn(records, key) ? records[key] : undefined;
  if (current && typeof current === 'object' && copy && typeof copy === 'object') {
    for (const field of Object.keys(current)) delete (current as Record<string, unknown>)[field];
    Object.assign(current, copy);
    records[key] = current;
  } else {
    records[key] = copy;
  }
}
