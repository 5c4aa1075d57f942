import { syncDirectory } from '../../common/local-files.js';

/**
 * Directory syncs, grouped: a sync asked for while another of the same directory runs waits for one
 * more that starts after it (a rename made before the ask is then covered), shared by everyone who
 * asked in the meantime. Many uploads into one workload's folder cost a few syncs, not one each.
 */
export class DirectorySyncs {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    const waiting = this.waiting.get(dir);
    if (waiting) return waiting;
    const before = this.running.get(dir) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(() => {
        this.waiting.delete(dir);
        const run = syncDirectory(dir);
        this.running.set(dir, run);
        return run.finally(() => {
          if (this.running.get(dir) === run) this.running.delete(dir);
        });
      });
    this.waiting.set(dir, next);
    return next;
  }
}
