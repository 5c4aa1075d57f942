import type { Data, Workload } from './schema.js';

/**
 * Each owner's workloads in creation order, and the names taken (in lower case), derived from the
 * workload records at load and kept in memory: listing a user's workloads, or checking a new name,
 * touches no other user's workloads.
 */
export class WorkloadIndex {
  private readonly byOwner = new Map<string, string[]>();
  private readonly names = new Set<string>();
  private count = 0;

  constructor(data: Data) {
    // the datastore's order is the order of creation (the order /status lists them in)
    for (const workload of Object.values(data.workloads)) this.add(workload);
  }

  /** How many workloads there are. */
  get size(): number {
    return this.count;
  }

  /** The owner's workload ids, in order of creation. */
  of(owner: string): readonly string[] {
    return this.byOwner.get(owner) ?? [];
  }

  /** Whether a workload has this name, whatever the case. */
  nameTaken(name: string): boolean {
    return this.names.has(name.toLowerCase());
  }

  /** After a rollback: `undone` holds the workloads as they were just before; the index follows the data. */
  restore(data: Data, undone: ReadonlyMap<string, unknown>): void {
    for (const [id, was] of undone) {
      if (was) this.remove(was as Workload);
      const workload = Object.hasOwn(data.workloads, id) ? data.workloads[id] : undefined;
      if (workload) this.add(workload);
    }
  }

  add(workload: Workload): void {
    let ids = this.byOwner.get(workload.owner);
    if (!ids) {
      ids = [];
      this.byOwner.set(workload.owner, ids);
    }
    ids.push(workload.id);
    this.names.add(workload.name.toLowerCase());
    this.count += 1;
  }

  private remove(workload: Workload): void {
    const ids = this.byOwner.get(workload.owner);
    const at = ids?.indexOf(workload.id) ?? -1;
    if (!ids || at < 0) return;
    ids.splice(at, 1);
    this.names.delete(workload.name.toLowerCase());
    this.count -= 1;
  }
}
