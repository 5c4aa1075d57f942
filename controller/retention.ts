import type { Logger } from '../common/log.js';
import { formatDuration, formatSize } from '../common/units.js';
import type { Lifecycle } from './lifecycle.js';
import { own, type Store } from './store/index.js';
import { expiresAt, type WorkloadBooks } from './workloads.js';

export interface Retention {
  /** One pass now: deletes every workload past its expiry; resolves with how many were deleted. */
  sweep(): Promise<number>;
  stop(): void;
}

/** How often retention looks for expired workloads: a tenth of the period, between 1 s and 1 min. */
export function retentionIntervalMs(retentionMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(retentionMs / 10)));
}

/**
 * Deletes, in the background, the finished or cancelled workloads whose last activity is older than the
 * retention period (see expiresAt), one at a time, each logged. A pass walks the workloads, not their
 * images; a pass still running when the next is due is not doubled.
 */
export function startRetention(
  books: WorkloadBooks & { store: Store },
  lifecycle: Lifecycle,
  retentionMs: number,
  log: Logger,
  clock: () => number = Date.now,
): Retention {
  let running: Promise<number> | null = null;

  async function pass(): Promise<number> {
    const now = clock();
    const due: string[] = [];
    for (const id of books.store.workloadIndex.all()) {
      const workload = books.store.data.workloads[id];
      const expires = workload ? expiresAt(books, workload) : null;
      if (expires !== null && expires <= now) due.push(id);
    }
    let deleted = 0;
    for (const id of due) {
      // looked up again: its owner may have deleted it, or uploaded into it, while the one before went
      const workload = own(books.store.data.workloads, id);
      const expires = workload ? expiresAt(books, workload) : null;
      if (!workload || expires === null || expires > clock()) continue;
      try {
        const removed = await lifecycle.deleteWorkload(workload, 'retention');
        deleted += 1;
        log.info(
          {
            workload_id: workload.id,
            workload_name: workload.name,
            owner: workload.owner,
            images: removed.images,
            bytes: removed.bytes,
          },
          `retention: deleted a workload idle for more than ${formatDuration(retentionMs)} ` +
            `(${formatSize(removed.bytes)} freed)`,
        );
      } catch (error) {
        log.error(
          { workload_id: workload.id, error: error instanceof Error ? error.message : String(error) },
          'retention: could not delete an expired workload: tried again at the next pass',
        );
      }
    }
    return deleted;
  }

  function sweep(): Promise<number> {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = setInterval(() => void sweep(), retentionIntervalMs(retentionMs));
  timer.unref();
  return {
    sweep,
    stop: () => clearInterval(timer),
  };
}
