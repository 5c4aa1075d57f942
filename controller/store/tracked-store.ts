// The datastore port, in memory: the records, what changed since the last commit, grouped commits, and the
// rollback of a commit that failed. Where the changes go (a journal on disk, PostgreSQL) is a Persistence.
import { AppError } from '../../common/errors.js';
import { OriginalsIndex } from './originals.js';
import type { Collection, Data } from './schema.js';
import { WorkloadIndex } from './workload-index.js';

export interface Store {
  readonly data: Data;
  /** Each workload's originals in upload order. */
  readonly originals: OriginalsIndex;
  /** Each owner's workloads, and the names taken. */
  readonly workloadIndex: WorkloadIndex;
  /** Where the records are kept: `lowdb` (the data folder) or `postgres`. */
  readonly kind: StoreKind;
  /**
   * Every record of the collection, for a walk over all of them. Listing a large object's keys or values costs
   * seconds at millions of records (V8 sorts them into their order of insertion first), so the list is made
   * once and kept until a record of the collection is added or deleted (`change`): the walks at open share it.
   * Do not change the list.
   */
  values<C extends Collection>(collection: C): readonly Data[C][string][];
  /**
   * Call before changing, adding or deleting a record: the store remembers the record as it was, so
   * that a commit that fails can put it back.
   */
  change(collection: Collection, key: string): void;
  /**
   * The same, after the change: `before` is the record as it was (a copy), or undefined if it did not exist.
   * A record the change only deleted, untouched, may be passed itself (no copy: a rollback puts that very object
   * back); nothing may change it afterwards.
   */
  changed(collection: Collection, key: string, before: object | undefined): void;
  /**
   * Persist every change so far; resolves once they are durable. Calls close together share one write. A
   * commit lands whole or not at all: when it fails, every change not yet kept is rolled back in memory (the
   * records as they were before `change`) and the promise rejects.
   */
  commit(options?: CommitOptions): Promise<void>;
  /**
   * Makes the kept form compact now (the lowdb store streams a snapshot and drops the journal it covers;
   * commits go on meanwhile). Each store does this by itself when it is worth it.
   */
  compact(): Promise<void>;
  /**
   * Called after a failed commit put records back (to rebuild indexes): the keys it restored, and each
   * record as it was just before (undefined where it did not exist).
   */
  onRollback(listener: RollbackListener): void;
  close(): Promise<void>;
  stats(): StoreStats;
  /**
   * The key tokens are signed with: made once and kept with the records (lowdb: `jwt-secret` in the data dir;
   * PostgreSQL: the settings table, so that every server sharing the database accepts the others' tokens).
   */
  signingKey(): Promise<Buffer>;
  /**
   * Called when what the store keeps no longer matches the records in memory (PostgreSQL: a row changed by
   * someone else, or another server leads now): the server must read every record again. lowdb never calls it.
   */
  onNeedsReload(listener: (reason: string) => void): void;
}

export type StoreKind = 'lowdb' | 'postgres';

export interface CommitOptions {
  /**
   * false: the write need not be durable for this commit (a later durable commit covers it). For changes a
   * crash may lose because they are re-derived after a restart (an assignment: the job is queued again, and
   * a late result of its lease is refused); never for anything acknowledged.
   */
  durable?: boolean;
}

export type RollbackListener = (
  restored: ReadonlyMap<Collection, readonly string[]>,
  undone: ReadonlyMap<Collection, ReadonlyMap<string, unknown>>,
) => void;

export interface StoreStats {
  /** The lowdb store's journal since its last snapshot; 0 for PostgreSQL. */
  journalBytes: number;
  /** Snapshots the lowdb store wrote since it opened; 0 for PostgreSQL. */
  snapshots: number;
  /** What the lowdb store's journal held at the open (PostgreSQL: nothing to replay). */
  recovered: { applied: number; skipped: number };
}

/**
 * A commit sent whose answer never came (PostgreSQL's connection broke while its COMMIT was in flight): it may
 * have been kept or not. Rolled back in memory as any failed commit; the files it would have named are left in
 * place (a record may name them: the start-up sweep removes them if not), and the server reads every record
 * again (Store.onNeedsReload) to learn which. Answered 503.
 */
export class CommitOutcomeUnknown extends AppError {
  override name = 'CommitOutcomeUnknown';
  constructor(override readonly cause: unknown) {
    super(
      'unavailable',
      'the datastore (PostgreSQL) did not confirm the change: it may have been kept, and the server reads its ' +
        'records again. Look before you try again',
    );
  }
}

/** A record that did not exist before the change. */
const ABSENT = Symbol('absent');
/** A record as it was (a copy), and the object itself: put back, even after a deletion, it keeps its identity. */
class Kept {
  constructor(
    readonly copy: unknown,
    readonly ref: unknown,
  ) {}
}
/** How a record was before its first change since the last write: opaque outside this module (see recordBefore). */
export type Before = typeof ABSENT | Kept | object;
/** The changed keys of each collection since the last write, each with the record as it was before. */
export type ChangeBatch = ReadonlyMap<Collection, ReadonlyMap<string, Before>>;
type Batch = Map<Collection, Map<string, Before>>;

/** The record as it was before the batch changed it, or undefined where it did not exist. */
export function recordBefore(before: Before): unknown {
  if (before === ABSENT) return undefined;
  return before instanceof Kept ? before.copy : before;
}

/** Where a store's commits go. */
export interface Persistence {
  /**
   * Keeps the records of the batch as `data` holds them now (a key no longer in `data` is deleted); resolves
   * once they are kept (durably when `durable`). Rejects when nothing of it was kept: the store then rolls
   * the batch back in memory.
   */
  write(batch: ChangeBatch, durable: boolean): Promise<void>;
  /** A record of this key was put back as it was by a rollback. */
  restored(collection: Collection, key: string): void;
  compact(): Promise<void>;
  /** After the last commit was written: settles what runs in the background and lets go of the files or connections. */
  close(): Promise<void>;
  stats(): StoreStats;
  signingKey(): Promise<Buffer>;
  onNeedsReload?(listener: (reason: string) => void): void;
}

/** What a persistence may ask of the store it serves. */
export interface StoreCore {
  /** A commit is waiting to be written. */
  committing(): boolean;
}

interface Group {
  /** One of its commits needs the write durable. */
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
 * The store over `data`, its commits kept by the persistence `persist` makes. Commits are grouped: while one
 * write is in flight, every commit that arrives waits for the single next write.
 */
export function trackedStore(kind: StoreKind, data: Data, persist: (core: StoreCore) => Persistence): Store {
  /** Each collection's records as one list, until one of them is added or deleted (see Store.values). */
  const listed = new Map<Collection, readonly unknown[]>();
  function values<C extends Collection>(collection: C): readonly Data[C][string][] {
    let list = listed.get(collection);
    if (!list) {
      list = Object.values(data[collection]);
      listed.set(collection, list);
    }
    return list as readonly Data[C][string][];
  }
  const originals = new OriginalsIndex(values('images'));
  const workloadIndex = new WorkloadIndex(data);
  const rollbackListeners: RollbackListener[] = [];
  let changes: Batch = new Map();
  let pending: Group | null = null;
  let writing = false;
  const persistence = persist({ committing: () => pending !== null });

  function remember(collection: Collection, key: string, before: () => Before): void {
    listed.delete(collection);
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
    listed.clear();
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
          persistence.restored(collection, key);
        }
      }
    }
    const lists = new Map([...undone].map(([collection, done]) => [collection, [...done.keys()]] as const));
    originals.restore(data, lists.get('images') ?? []);
    workloadIndex.restore(data, undone.get('workloads') ?? new Map());
    for (const listener of rollbackListeners) listener(lists, undone);
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
          if (batch.size > 0) await persistence.write(batch, current.durable);
          current.resolve();
        } catch (error) {
          // nothing of it was kept: it goes back, and so does every change made since, which was
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
    kind,
    values,
    compact: () => persistence.compact(),
    change,
    changed: (collection, key, before) => remember(collection, key, () => before ?? ABSENT),
    commit,
    onRollback(listener) {
      rollbackListeners.push(listener);
    },
    async close() {
      await commit().catch(() => undefined);
      await persistence.close();
    },
    stats: () => persistence.stats(),
    signingKey: () => persistence.signingKey(),
    onNeedsReload(listener) {
      persistence.onNeedsReload?.(listener);
    },
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
  if (current === copy) {
    // a deleted record kept as itself (see `changed`): it goes back as it is
    records[key] = copy;
    return;
  }
  if (current && typeof current === 'object' && copy && typeof copy === 'object') {
    for (const field of Object.keys(current)) delete (current as Record<string, unknown>)[field];
    Object.assign(current, copy);
    records[key] = current;
  } else {
    records[key] = copy;
  }
}
