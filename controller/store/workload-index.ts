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
}
