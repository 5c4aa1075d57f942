import type { Data, Workload } from './schema.js';

/**
 * Each owner's workloads in creation order, and the names taken (in lower case), derived from the
 * workload records at load and kept in memory: listing a user's workloads, or checking a new name,
 * touches no other user's workloads.
 */
export class WorkloadIndex {
  private readonly byOwner = new Map<string, string[]>();
  private readonly names = new Set<string>();
  /** Names of deleted workloads whose folders are still being removed: not free yet. */
  private readonly held = new Set<string>();
  private count = 0;

  constructor(private readonly data: Data) {
    for (const workload of Object.values(data.workloads)) this.add(workload);
  }

  /** How many workloads there are. */
  get size(): number {
    return this.count;
  }

  /** The owner's workload ids, in order of creation (of `created_at`, then of id: see `creationOrder`). */
  of(owner: string): readonly string[] {
    return this.byOwner.get(owner) ?? [];
  }

  /** Whether a workload has this name, whatever the case. */
  nameTaken(name: string): boolean {
    return this.names.has(name.toLowerCase());
  }

  /** Whether a deleted workload's folder of this name is still being removed. */
  nameHeld(name: string): boolean {
    return this.held.has(name.toLowerCase());
  }

  /** Every owner's workload ids (each owner's in order of creation). */
  *all(): Generator<string> {
    for (const ids of this.byOwner.values()) yield* ids;
  }

  /**
   * The workload was deleted. Its name stays held until `releaseName`: a new workload of that name would
   * share the folder that is being removed.
   */
  delete(workload: Workload): void {
    this.remove(workload);
    this.held.add(workload.name.toLowerCase());
  }

  releaseName(name: string): void {
    this.held.delete(name.toLowerCase());
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
    // nearly always the newest: found at the end
    let at = ids.length;
    while (at > 0 && creationOrder(this.data.workloads[ids[at - 1]!], workload) > 0) at -= 1;
    ids.splice(at, 0, workload.id);
    this.names.add(workload.name.toLowerCase());
    this.count += 1;
  }

  private remove(workload: Workload): void {
    const ids = this.byOwner.get(workload.owner);
    const at = ids?.indexOf(workload.id) ?? -1;
    if (!ids || at < 0) return;
    ids.splice(at, 1);
    if (ids.length === 0) this.byOwner.delete(workload.owner);
    this.names.delete(workload.name.toLowerCase());
    this.count -= 1;
  }
}

/** Orders workloads by creation: `created_at`, then id (two made in the same millisecond). */
export function creationOrder(
  a: Pick<Workload, 'created_at' | 'id'> | undefined,
  b: Pick<Workload, 'created_at' | 'id'>,
): number {
  if (!a) return -1;
  return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
