import { randomUUID } from 'node:crypto';
import { AppError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ImageStore, PresignedUrl } from './image-store/index.js';
import { originalKey } from './images.js';
import { own, type Store, type UploadSlotRecord, type Workload } from './store/index.js';

/** How long an upload slot is open: its presigned PUT expires then, and what was put without a confirm goes. */
export const UPLOAD_SLOT_MS = 15 * 60_000;
/** Slots one user may hold open at once. */
export const MAX_OPEN_SLOTS = 1000;
const SWEEP_MS = 30_000;

/** An open slot: its record (the image id the original gets once confirmed, the key its PUT writes). */
export type UploadSlot = UploadSlotRecord;

/** What a slot is asked for: the type of the file and its exact length. */
export interface SlotRequest {
  mime: UploadSlot['mime'];
  bytes: number;
}

/** A slot given out, and the PUT that fills it. */
export interface OpenedSlot {
  slot: UploadSlot;
  put: PresignedUrl;
}

/**
 * Uploads that go around the server: a client asks for a slot (an image id and a presigned PUT for its key),
 * puts the bytes in the store, and confirms; the route checks the object before it becomes an original with
 * a job. A slot never confirmed expires, and its object is removed. Open slots are records of the datastore
 * (`upload_slots`), committed before the slot is given out: a restart, or another server that leads after this
 * one, honours them and expires them in time.
 */
export class UploadSlots {
  private readonly byOwner = new Map<string, number>();
  /** Slots being opened (their URLs signed) per owner, not yet records. */
  private readonly opening = new Map<string, number>();
  /** Slots whose confirm is being checked here: a second confirm at once is refused (one slot, one original). */
  private readonly confirming = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly files: ImageStore,
    private readonly log: Logger,
    private readonly slotMs = UPLOAD_SLOT_MS,
  ) {
    for (const slot of Object.values(store.data.upload_slots)) this.count(slot.owner, 1);
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.min(SWEEP_MS, slotMs));
    this.sweeper.unref();
    // a failed commit puts slot records back or takes them out: the counts follow
    store.onRollback((restored) => {
      if (restored.has('upload_slots')) this.recount();
    });
  }

  /** Whether clients can upload around the server (the store presigns). */
  get offered(): boolean {
    return this.files.presigns;
  }

  /** A new slot for one original of `mime` and of `bytes` bytes in the workload, and the PUT that fills it. */
  async create(workload: Workload, mime: UploadSlot['mime'], bytes: number): Promise<OpenedSlot> {
    return (await this.createMany(workload, [{ mime, bytes }]))[0]!;
  }

  /**
   * A slot for each of `files` in the workload, in their order, kept with one commit: all of them or, refused
   * (over the open slots a user may hold, or the commit failed), none.
   */
  async createMany(workload: Workload, files: readonly SlotRequest[]): Promise<OpenedSlot[]> {
    if (!this.offered)
      throw new AppError(
        'conflict',
        'this server keeps images in a local folder: upload through POST /images (upload slots need object storage)',
      );
    const owner = workload.owner;
    const held = (this.byOwner.get(owner) ?? 0) + (this.opening.get(owner) ?? 0);
    if (held + files.length > MAX_OPEN_SLOTS)
      throw new AppError(
        'too_many_requests',
        `${held} upload slots are open${files.length > 1 ? ` and ${files.length} more were asked for` : ''}: ` +
          `confirm or let some expire (${MAX_OPEN_SLOTS} at most)`,
      );
    const opened = await this.signed(workload, files);
    for (const { slot } of opened) {
      this.store.change('upload_slots', slot.id);
      this.store.data.upload_slots[slot.id] = slot;
      this.count(owner, 1);
    }
    // kept before they are given out: whichever server leads when the client confirms knows them
    await this.store.commit();
    return opened;
  }

  /**
   * The slots and their PUTs, not yet records. They count against the owner's open slots while their URLs are
   * signed, so that requests at the same time cannot open more than the limit.
   */
  private async signed(workload: Workload, files: readonly SlotRequest[]): Promise<OpenedSlot[]> {
    const { owner } = workload;
    addTo(this.opening, owner, files.length);
    try {
      const expiresAt = Date.now() + this.slotMs;
      return await Promise.all(
        files.map(async ({ mime, bytes }): Promise<OpenedSlot> => {
          const id = randomUUID();
          const slot: UploadSlot = {
            id,
            owner,
            workload_id: workload.id,
            key: originalKey(workload, id, mime),
            mime,
            bytes,
            expires_at: expiresAt,
          };
          // bound to the declared length: the store refuses any other body, so a slot cannot fill the bucket
          const put = await this.files.presign('PUT', slot.key, Math.floor(this.slotMs / 1000), mime, bytes);
          return { slot, put };
        }),
      );
    } finally {
      addTo(this.opening, owner, -files.length);
    }
  }

  /**
   * The owner's open slot, taken for its confirm (give it back with `release` to let it be confirmed again);
   * 404 (unknown, another user's, already confirmed), 409 (being confirmed) or 410 (expired).
   */
  take(owner: string, id: string): UploadSlot {
    const slot = own(this.store.data.upload_slots, id);
    if (!slot || slot.owner !== owner) throw new AppError('not_found', `no open upload slot "${id}"`);
    if (slot.expires_at <= Date.now()) {
      this.expire(slot);
      throw new AppError('gone', `upload slot "${id}" expired: ask for a new one`);
    }
    if (this.confirming.has(id)) throw new AppError('conflict', `upload slot "${id}" is being confirmed already`);
    this.confirming.add(id);
    return slot;
  }

  /** A confirm that found nothing put yet: the slot can be confirmed again. */
  release(slot: UploadSlot): void {
    this.confirming.delete(slot.id);
  }

  /**
   * The slot is done with: confirmed, or refused for good (its object is the caller's to remove). Its record goes
   * with the next commit (the one of the confirmed original, when it comes after it).
   */
  close(slot: UploadSlot): void {
    this.confirming.delete(slot.id);
    if (own(this.store.data.upload_slots, slot.id) !== slot) return;
    this.store.change('upload_slots', slot.id);
    delete this.store.data.upload_slots[slot.id];
    this.count(slot.owner, -1);
    this.store.commit().catch(() => undefined);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private count(owner: string, by: number): void {
    addTo(this.byOwner, owner, by);
  }

  private recount(): void {
    this.byOwner.clear();
    for (const slot of Object.values(this.store.data.upload_slots)) this.count(slot.owner, 1);
  }

  private sweep(now: number): void {
    for (const slot of Object.values(this.store.data.upload_slots))
      if (slot.expires_at <= now && !this.confirming.has(slot.id)) this.expire(slot);
  }

  /**
   * An expired slot closes and whatever was put in it goes (its PUT no longer works), unless it became an original:
   * a server stopped between a confirm's commit and the slot's own keeps the record of a slot that was confirmed.
   */
  private expire(slot: UploadSlot): void {
    this.close(slot);
    if (own(this.store.data.images, slot.id)) return;
    this.files.remove(slot.key).catch((error: unknown) => {
      // the start-up sweep of the store removes it later
      this.log.warn(
        { key: slot.key, error: error instanceof Error ? error.message : String(error) },
        'slot object stays',
      );
    });
  }
}

/** Adds `by` to the owner's count, which goes from the map at 0. */
function addTo(counts: Map<string, number>, owner: string, by: number): void {
  const total = (counts.get(owner) ?? 0) + by;
  if (total > 0) counts.set(owner, total);
  else counts.delete(owner);
}
