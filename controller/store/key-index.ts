import { COLLECTIONS, type Collection, type Data } from './schema.js';

/**
 * The keys of every collection, in Sets kept beside the records. A Set can be walked a few records at a
 * time while it changes; an object of a million keys cannot (Object.keys and for-in list them all
 * first: 0.4-0.5 s at 1,000,000 here), so the snapshot walks these.
 */
export class KeyIndex {
  private readonly sets = new Map<Collection, Set<string>>();

  constructor(data: Data) {
    for (const collection of COLLECTIONS) this.sets.set(collection, new Set(Object.keys(data[collection])));
  }

  /** How many records there are, in all collections. */
  get size(): number {
    let size = 0;
    for (const keys of this.sets.values()) size += keys.size;
    return size;
  }

  of(collection: Collection): ReadonlySet<string> {
    return this.sets.get(collection) ?? new Set();
  }

  /** The record was written or deleted: the index follows what the data holds now. */
  follow(data: Data, collection: Collection, key: string): void {
    const keys = this.sets.get(collection);
    if (!keys) return;
    if (Object.hasOwn(data[collection], key)) keys.add(key);
    else keys.delete(key);
  }
}
