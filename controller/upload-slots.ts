import { randomUUID } from 'node:crypto';
import { AppError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ImageStore, PresignedUrl } from './image-store/index.js';
import { originalKey, type ImageMime } from './images.js';
import type { Workload } from './store/index.js';

/** How long an upload slot is open: its presigned PUT expires then, and what was put without a confirm goes. */
export const UPLOAD_SLOT_MS = 15 * 60_000;
/** Slots one user may hold open at once. */
export const MAX_OPEN_SLOTS = 1000;
const SWEEP_MS = 30_000;

export interface UploadSlot {
  /** The image id the original gets once confirmed. */
  id: string;
  owner: string;
  workload_id: string;
  key: string;
  mime: ImageMime;
  expires_at: number;
  /** A confirm is being checked: a second one at the same time is refused (one slot, one original). */
  confirming: boolean;
}

/**
 * Uploads that go around the server: a client asks for a slot (an image id and a presigned PUT for its key),
 * puts the bytes in the store, and confirms; the route checks the object before it becomes an original with
 * a job. A slot never confirmed expires, and its object is removed. Open slots live in memory: after a
 * restart the objects of slots that were never confirmed are found by the image store's start-up sweep.
 */
export class UploadSlots {
  private readonly open = new Map<string, UploadSlot>();
  private readonly byOwner = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly files: ImageStore,
    private readonly log: Logger,
    private readonly slotMs = UPLOAD_SLOT_MS,
  ) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.min(SWEEP_MS, slotMs));
    this.sweeper.unref();
  }

  /** Whether clients can upload around the server (the store presigns). */
  get offered(): boolean {
    return this.files.presigns;
  }

  /** A new slot for one original of `mime` in the workload, and the PUT that fills it. */
  async create(workload: Workload, mime: ImageMime): Promise<{ slot: UploadSlot; put: PresignedUrl }> {
    if (!this.offered)
      throw new AppError(
        'conflict',
        'this server keeps images in a local folder: upload through POST /images (upload slots need object storage)',
      );
    const held = this.byOwner.get(workload.owner) ?? 0;
    if (held >= MAX_OPEN_SLOTS)
      throw new AppError(
        'too_many_requests',
        `${held} upload slots are open: confirm or let some expire (${MAX_OPEN_SLOTS} at most)`,
      );
    const id = randomUUID();
    const slot: UploadSlot = {
      id,
      owner: workload.owner,
      workload_id: workload.id,
      key: originalKey(workload, id, mime),
      mime,
      expires_at: Date.now() + this.slotMs,
      confirming: false,
    };
    const put = await this.files.presign('PUT', slot.key, Math.floor(this.slotMs / 1000), mime);
    this.open.set(id, slot);
    this.byOwner.set(workload.owner, held + 1);
    return { slot, put };
  }

  /**
   * The owner's open slot, taken for its confirm (give it back with `release` to let it be confirmed again);
   * 404 (unknown, another user's, already confirmed), 409 (being confirmed) or 410 (expired).
   */
  take(owner: string, id: string): UploadSlot {
    const slot = this.open.get(id);
    if (!slot || slot.owner !== owner) throw new AppError('not_found', `no open upload slot "${id}"`);
    if (slot.expires_at <= Date.now()) {
      this.expire(slot);
      throw new AppError('gone', `upload slot "${id}" expired: ask for a new one`);
    }
    if (slot.confirming) throw new AppError('conflict', `upload slot "${id}" is being confirmed already`);
    slot.confirming = true;
    return slot;
  }

  /** A confirm that found nothing put yet: the slot can be confirmed again. */
  release(slot: UploadSlot): void {
    slot.confirming = false;
  }

  /** The slot is done with: confirmed, or refused for good (its object is the caller's to remove). */
  close(slot: UploadSlot): void {
    if (this.open.get(slot.id) !== slot) return;
    this.open.delete(slot.id);
    const held = (this.byOwner.get(slot.owner) ?? 1) - 1;
    if (held > 0) this.byOwner.set(slot.owner, held);
    else this.byOwner.delete(slot.owner);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private sweep(now: number): void {
    for (const slot of this.open.values()) if (slot.expires_at <= now && !slot.confirming) this.expire(slot);
  }

  /** An expired slot closes and whatever was put in it goes (its PUT no longer works). */
  private expire(slot: UploadSlot): void {
    this.close(slot);
    this.files.remove(slot.key).catch((error: unknown) => {
      // the start-up sweep of the store removes it later
      this.log.warn(
        { key: slot.key, error: error instanceof Error ? error.message : String(error) },
        'slot object stays',
      );
    });
  }
}
