/**
 * Ids kept sorted by a number that never changes for an id (a job's original's upload order): adding,
 * removing and finding a place are binary searches, so none of them walks the list.
 */
export class OrderedIds {
  private readonly ids: string[];

  /** `sorted` must already be in order (a list built in one pass, sorted once). */
  constructor(
    private readonly order: (id: string) => number,
    sorted: string[] = [],
  ) {
    this.ids = sorted;
  }

  get size(): number {
    return this.ids.length;
  }

  /** The ids in order; a live view, not a copy. */
  values(): readonly string[] {
    return this.ids;
  }

  /** Puts the id in its place (after any id of the same order); an id already there stays once. */
  add(id: string): void {
    const key = this.order(id);
    if (this.indexOf(id, key) >= 0) return;
    // appending is the common case: results and returns mostly come in upload order
    const last = this.ids.at(-1);
    if (last === undefined || this.order(last) <= key) this.ids.push(id);
    else this.ids.splice(this.firstAfter(key), 0, id);
  }

  delete(id: string): boolean {
    const index = this.indexOf(id, this.order(id));
    if (index < 0) return false;
    this.ids.splice(index, 1);
    return true;
  }

  /** The first id whose order is greater than `key`: a walk that resumes there skips what it saw, whatever moved. */
  after(key: number): string | undefined {
    return this.ids[this.firstAfter(key)];
  }

  private indexOf(id: string, key: number): number {
    for (let index = this.firstFrom(key); index < this.ids.length; index++) {
      const at = this.ids[index]!;
      if (at === id) return index;
      if (this.order(at) !== key) break;
    }
    return -1;
  }

  /** The first index whose order is at least `key`. */
  private firstFrom(key: number): number {
    return this.search((order) => order < key);
  }

  /** The first index whose order is greater than `key`. */
  private firstAfter(key: number): number {
    return this.search((order) => order <= key);
  }

  private search(before: (order: number) => boolean): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (before(this.order(this.ids[middle]!))) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
