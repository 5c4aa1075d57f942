import type { Data, ImageRecord } from './schema.js';

/** The images in upload order: as they are when they come in it (as both stores load them), else sorted. */
function inUploadOrder(images: ImageRecord[]): ImageRecord[] {
  for (let index = 1; index < images.length; index++)
    if (images[index - 1]!.seq > images[index]!.seq) return images.sort((a, b) => a.seq - b.seq);
  return images;
}

/**
 * Each workload's originals in upload order, derived from the image records at load and kept in
 * memory: the workload's own record never grows, so writing it does not cost more as it fills.
 */
export class OriginalsIndex {
  private readonly byWorkload = new Map<string, string[]>();
  private seq = 0;

  /** `images`: every image record (Store.values). */
  constructor(images: readonly ImageRecord[]) {
    const originals = inUploadOrder(images.filter((image) => image.type === 'original'));
    for (const image of originals) this.add(image.workload_id, image.id);
    for (const image of images) if (image.seq > this.seq) this.seq = image.seq;
  }

  of(workloadId: string): readonly string[] {
    return this.byWorkload.get(workloadId) ?? [];
  }

  add(workloadId: string, imageId: string): void {
    let list = this.byWorkload.get(workloadId);
    if (!list) {
      list = [];
      this.byWorkload.set(workloadId, list);
    }
    list.push(imageId);
  }

  /** The original was deleted. */
  remove(workloadId: string, imageId: string): void {
    const list = this.byWorkload.get(workloadId);
    const at = list?.lastIndexOf(imageId) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.byWorkload.delete(workloadId);
  }

  /** The workload was deleted, with every original of it. */
  dropWorkload(workloadId: string): void {
    this.byWorkload.delete(workloadId);
  }

  /** After a rollback: the images named are as the store now holds them (gone, or back). */
  restore(data: Data, imageIds: readonly string[]): void {
    for (const id of imageIds) {
      const image = Object.hasOwn(data.images, id) ? data.images[id] : undefined;
      for (const [workloadId, list] of this.byWorkload) {
        const at = list.indexOf(id);
        if (at >= 0 && image?.workload_id !== workloadId) list.splice(at, 1);
      }
      if (image?.type === 'original' && !this.of(image.workload_id).includes(id)) {
        const list = this.byWorkload.get(image.workload_id) ?? [];
        this.byWorkload.set(image.workload_id, list);
        const at = list.findIndex((other) => (data.images[other]?.seq ?? 0) > image.seq);
        list.splice(at < 0 ? list.length : at, 0, id);
      }
    }
  }

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }
}
