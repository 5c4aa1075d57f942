import { AppError } from '../common/errors.js';
import { formatSize } from '../common/units.js';
import type { ImageRecord } from './store/index.js';

/** What one user may keep: originals and their bytes. Null: no cap. */
export interface UserQuotaLimits {
  /** Originals per user (`--user-quota-images`). */
  images: number | null;
  /** Bytes of a user's originals together (`--user-quota-bytes`). */
  bytes: number | null;
}

export const NO_QUOTAS: UserQuotaLimits = { images: null, bytes: null };

interface Usage {
  images: number;
  bytes: number;
}

/**
 * Per-user counts of originals and their bytes, counted once at start from the records and then kept
 * up to date as originals are kept, so a check never walks the images. An upload reserves its share
 * before its file is written (two uploads at once cannot both slip under the cap) and gives it back if
 * it is not kept. Filtered images are the system's work, not the user's upload: they do not count.
 * (Nothing deletes images yet; a deletion will have to give its share back.)
 */
export class UserQuotas {
  private readonly usage = new Map<string, Usage>();

  constructor(
    private readonly limits: UserQuotaLimits,
    images: Iterable<ImageRecord>,
  ) {
    for (const image of images) if (image.type === 'original') this.add(image.owner, 1, image.bytes);
  }

  /** What the user keeps now (reservations of uploads in progress included). */
  of(user: string): Usage {
    const usage = this.usage.get(user);
    return usage ? { ...usage } : { images: 0, bytes: 0 };
  }

  /** 403 when one more original of `incomingBytes` would pass one of the user's caps. */
  check(user: string, incomingBytes: number): void {
    const { images, bytes } = this.of(user);
    const { images: maxImages, bytes: maxBytes } = this.limits;
    if (maxImages !== null && images + 1 > maxImages)
      throw new AppError(
        'forbidden',
        `quota of ${maxImages} images reached: you keep ${images} originals, the most one user may ` +
          '(--user-quota-images)',
      );
    if (maxBytes !== null && bytes + incomingBytes > maxBytes)
      throw new AppError(
        'forbidden',
        `quota of ${formatSize(maxBytes)} reached: your originals take ${formatSize(bytes)}, and this upload ` +
          `of ${formatSize(incomingBytes)} would pass the most one user may keep (--user-quota-bytes)`,
      );
  }

  /** Checks, then counts the original as kept; the returned function takes it back (the upload was not kept). */
  reserve(user: string, bytes: number): () => void {
    this.check(user, bytes);
    this.add(user, 1, bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.add(user, -1, -bytes);
    };
  }

  private add(user: string, images: number, bytes: number): void {
    const usage = this.usage.get(user) ?? { images: 0, bytes: 0 };
    usage.images += images;
    usage.bytes += bytes;
    if (usage.images <= 0 && usage.bytes <= 0) this.usage.delete(user);
    else this.usage.set(user, usage);
  }
}
