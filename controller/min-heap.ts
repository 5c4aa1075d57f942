/** A binary min-heap of (at, id): the earliest first. Push and pop cost log n. */
export class MinHeap {
  private readonly items: { at: number; id: string }[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): { at: number; id: string } | undefined {
    return this.items[0];
  }

  push(at: number, id: string): void {
    const items = this.items;
    items.push({ at, id });
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (items[parent]!.at <= items[index]!.at) break;
      [items[parent], items[index]] = [items[index]!, items[parent]!];
      index = parent;
    }
  }

  pop(): { at: number; id: string } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (!top || !last || items.length === 0) return top;
    items[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < items.length && items[left]!.at < items[smallest]!.at) smallest = left;
      if (right < items.length && items[right]!.at < items[smallest]!.at) smallest = right;
      if (smallest === index) break;
      [items[smallest], items[index]] = [items[index]!, items[smallest]!];
      index = smallest;
    }
    return top;
  }
}
