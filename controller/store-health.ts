import type { Logger } from '../common/log.js';
import { ImageStoreUnavailable, type ImageStore } from './image-store/index.js';

const FIRST_PROBE_MS = 500;
const MAX_PROBE_MS = 10_000;
/** A key no image ever has (keys are `<workload>/<file>`, workload names start with a letter or digit). */
export const PROBE_KEY = '.health/probe';

/**
 * Whether the image store answers. A failure of the store (ImageStoreUnavailable anywhere, or a worker
 * that could not reach it) marks it down; from then on a probe asks it again, 0.5 s after and backing off
 * to every 10 s, until it answers. While it is down no job is given out (it would only fail), uploads
 * answer 503 by themselves, and once it is back the scheduler is woken.
 */
export class StoreHealth {
  private down = false;
  private probeMs = FIRST_PROBE_MS;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private since = 0;
  private checking = false;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly onBack: () => void,
    private readonly log: Logger,
  ) {}

  get available(): boolean {
    return !this.down;
  }

  /** Epoch ms since when the store is down; 0 while it is up. */
  get downSince(): number {
    return this.down ? this.since : 0;
  }

  /** The store failed (or a worker says it could not reach it): probe until it answers. */
  failed(reason: string): void {
    if (this.closed || this.down) return;
    this.down = true;
    this.since = Date.now();
    this.probeMs = FIRST_PROBE_MS;
    this.log.warn({ reason }, 'the image store is unavailable: jobs wait until it answers again');
    this.schedule();
  }

  /**
   * Someone else (a worker) could not reach the store: it is asked now, and marked down only if it does not
   * answer the server either (one worker's network trouble does not hold every job).
   */
  suspect(reason: string): void {
    if (this.closed || this.down || this.checking) return;
    this.checking = true;
    this.probe().then(
      () => {
        this.checking = false;
      },
      () => {
        this.checking = false;
        this.failed(reason);
      },
    );
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.check(), this.probeMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    this.timer = null;
    if (this.closed) return;
    try {
      await this.probe();
    } catch (error) {
      this.probeMs = Math.min(MAX_PROBE_MS, this.probeMs * 2);
      this.log.debug({ error: error instanceof Error ? error.message : String(error) }, 'image store still down');
      this.schedule();
      return;
    }
    this.log.info({ down_ms: Date.now() - this.since }, 'the image store answers again');
    this.down = false;
    this.onBack();
  }
}

/** The probe: a read of a key that is never there, answered (null) by a store that works. */
export function probeOf(store: ImageStore): () => Promise<void> {
  return async () => {
    await store.inspect(PROBE_KEY, 0);
  };
}

/** The store, with every ImageStoreUnavailable it throws reported to `health` on its way to the caller. */
export function watchedStore(store: ImageStore, health: StoreHealth): ImageStore {
  const watch = <T>(call: Promise<T>): Promise<T> =>
    call.catch((error: unknown) => {
      if (error instanceof ImageStoreUnavailable) health.failed(error.message);
      throw error;
    });
  return {
    kind: store.kind,
    where: store.where,
    presigns: store.presigns,
    check: () => store.check(),
    prepare: (referenced, folders, graceMs) => watch(store.prepare(referenced, folders, graceMs)),
    stagingPath: () => store.stagingPath(),
    discardStaged: (staged) => store.discardStaged(staged),
    put: (content, key, mime) => watch(store.put(content, key, mime)),
    open: (key) => watch(store.open(key)),
    inspect: (key, headBytes) => watch(store.inspect(key, headBytes)),
    settle: (key) => watch(store.settle(key)),
    remove: (key) => watch(store.remove(key)),
    makeFolder: (name) => watch(store.makeFolder(name)),
    removeFolder: (name) => watch(store.removeFolder(name)),
    removeFolderIfEmpty: (name) => watch(store.removeFolderIfEmpty(name)),
    localPath: (key) => store.localPath(key),
    folderId: () => store.folderId(),
    presign: (method, key, expiresInSeconds, mime, bytes) => store.presign(method, key, expiresInSeconds, mime, bytes),
  };
}
