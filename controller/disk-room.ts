import { statfsSync } from 'node:fs';
import { AppError } from '../common/errors.js';
import { formatSize } from '../common/units.js';

/**
 * The free space an upload must leave on the disks the server writes to (the images and the data
 * folders): below the reserve, uploads are refused with 507 before the disk is actually full, so the
 * datastore always has room to record what it already accepted, and the server stays usable.
 */
export class DiskRoom {
  constructor(
    private readonly dirs: readonly string[],
    private readonly reserveBytes: number,
  ) {}

  /** Throws 507 when `incomingBytes` more would leave less than the reserve free on any of the disks. */
  check(incomingBytes: number): void {
    if (this.reserveBytes <= 0) return;
    for (const dir of this.dirs) {
      const free = freeBytes(dir);
      if (free === null || free - incomingBytes >= this.reserveBytes) continue;
      throw new AppError(
        'insufficient_storage',
        `the server's disk is nearly full (${formatSize(free)} free): uploads are refused below the reserve of ` +
          `${formatSize(this.reserveBytes)} (--min-free-disk). Try again once space has been freed`,
      );
    }
  }
}

function freeBytes(dir: string): number | null {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return null; // not there yet: nothing to measure, the write will tell
  }
}
