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
 * Per-user counts of originals and their bytes, kept up to date by the image library as originals are
 * kept and deleted (it counts each record once at start), so a check never walks the images. An upload
 * also reserves its share before its file is written, so two uploads at once cannot both slip under the
 * cap; the reservation ends when the upload is answered (its record, if kept, counts from then on).
 * Filtered images are the system's work, not the user's upload: they do not count.
 */
export class UserQuotas {
  private readonly usage = new Map<string, Usage>();

  constructor(private readonly limits: UserQuotaLimits) {}

  /** An image record came (sign 1) or went (sign -1): an original counts against its owner. */
  counted(image: ImageRecord, sign: 1 | -1): void {
    if (image.type === 'original') this.add(image.owner, sign, sign * image.bytes);
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

  /** Checks, then counts the upload in progress; the returned function ends the reservation (call it once answered). */
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
