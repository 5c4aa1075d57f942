// What a scrape (GET /metrics), a status (GET /status), a list (GET /workloads) and a scheduler pass
// cost against the size of the history: 100 and 1,000,000 finished images (each an original, its done
// job and its filtered image), in workloads of 100 images spread over 100 other users, plus a queue
// of a tenth as many jobs that no worker can take (filter blur, tag gpu; the one worker has grayscale
// only, and free slots). The caller, ann, has a completed workload of 20 images and a running one of 10.
// The records are put straight into the datastore, then the controller's books are built over them as
// at a restart (the job book and the image library count what is there in one pass); the requests go
// over HTTP on loopback to the real API. Last, GET /status again while eight clients scrape /metrics
// without pause (the issue: eight anonymous scrapers pushed other requests past the heartbeat timeout).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { startApi } from '../api/index.js';
import { createLogger } from '../common/log.js';
import type { Resources } from '../common/protocol.js';
import {
  DEFAULT_RETRY_POLICY,
  type Controller,
  type ControllerEvents,
  type ImageRecord,
  type Job,
  type JobState,
  type Workload,
} from '../controller/index.js';
import { DiskRoom } from '../controller/disk-room.js';
import { LocalImageStore } from '../controller/image-store/index.js';
import { DirectTransfers } from '../controller/direct-transfers.js';
import { LeftoverRemovals } from '../controller/leftover-removals.js';
import { Lifecycle } from '../controller/lifecycle.js';
import { ImageLibrary } from '../controller/images.js';
import { NO_QUOTAS, UserQuotas } from '../controller/quotas.js';
import { JobBook } from '../controller/job-book.js';
import { startLeaseSweeper } from '../controller/lease-sweeper.js';
import { schedulingPort } from '../controller/scheduling.js';
import { StoreHealth } from '../controller/store-health.js';
import { UploadSlots } from '../controller/upload-slots.js';
import { openStore, type Store } from '../controller/store/index.js';
import { createTokens } from '../controller/tokens.js';
import { createUsers } from '../controller/users.js';
import { WorkerActivityBook, WorkerHistory, WorkerRegistry } from '../controller/workers/index.js';
import { startScheduler } from '../scheduler/index.js';
import { imageRecord } from '../test/helpers/records.js';
import { makeDirs, testServerConfig } from '../test/helpers/system.js';

const SIZES = (process.env.SCRAPE_IMAGES ?? '100,1000000').split(',').map(Number);
const PER_WORKLOAD = 100;
const OTHER_USERS = 100;
/** Each measure repeats for about this long (at least 3 times, at most 2,000). */
const MEASURE_MS = Number(process.env.MEASURE_MS ?? 2000);
const log = createLogger('bench', 'silent');
const resources: Resources = { cpu_load: 10, cores: 2, mem_free: 1e9, mem_total: 2e9, gpu: { present: false } };
const at = new Date(Date.now() - 3_600_000).toISOString();

/** Fills the datastore's records directly, as a long history would have left them. */
class History {
  constructor(private readonly store: Store) {}

  workload(owner: string, filter: string, tags: string[] = []): Workload {
    const workload = { id: randomUUID(), owner, name: `w-${randomUUID().slice(0, 13)}`, filter, tags, created_at: at };
    this.store.data.workloads[workload.id] = workload;
    this.store.workloadIndex.add(workload);
    return workload;
  }

  /** An original and its job in `state` (a done job with its filtered image; a running one leased). */
  image(workload: Workload, state: JobState): void {
    const { data, originals } = this.store;
    const original = this.record(workload, 'original', null);
    const job: Job = {
      id: randomUUID(),
      workload_id: workload.id,
      image_id: original.id,
      state,
      attempts: state === 'queued' ? 0 : 1,
      lease:
        state === 'running' ? { worker_id: 'busy-worker', lease_id: randomUUID(), expires_at: Date.now() + 1e9 } : null,
      not_before: 0,
      error: null,
      filtered_image_id: null,
      created_at: at,
      updated_at: at,
      started_at: state === 'queued' ? null : at,
      finished_at: state === 'done' ? at : null,
    };
    original.job_id = job.id;
    data.images[original.id] = original;
    originals.add(workload.id, original.id);
    data.jobs[job.id] = job;
    if (state !== 'done') return;
    const filtered = this.record(workload, 'filtered', original.id);
    job.filtered_image_id = filtered.id;
    data.images[filtered.id] = filtered;
  }

  private record(workload: Workload, type: ImageRecord['type'], source: string | null): ImageRecord {
    const seq = this.store.originals.nextSeq();
    return imageRecord(workload, type, { source_image_id: source, bytes: 20_000, seq, created_at: at });
  }
}

/** Milliseconds per call, over about MEASURE_MS (after one call to warm up). */
async function measure(call: () => Promise<unknown> | unknown): Promise<number> {
  await call();
  let rounds = 0;
  const started = performance.now();
  while (rounds < 3 || (rounds < 2000 && performance.now() - started < MEASURE_MS)) {
    await call();
    rounds++;
  }
  return (performance.now() - started) / rounds;
}

/**
 * ms per GET /status while eight clients scrape /metrics as fast as they are answered, and how many
 * of those requests failed (a server that blocks for seconds closes kept-alive connections under them).
 */
async function statusUnderScrapers(url: string, token: string): Promise<{ ms: number; failed: number }> {
  let scraping = true;
  let failed = 0;
  const scrapers = Array.from({ length: 8 }, async () => {
    while (scraping) await get(`${url}/metrics`).catch(() => undefined);
  });
  const ms = await measure(() =>
    get(`${url}/status`, token).catch(() => {
      failed++;
    }),
  );
  scraping = false;
  await Promise.all(scrapers);
  return { ms, failed };
}

/** A GET, read to its end. */
async function get(url: string, token?: string): Promise<void> {
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  await response.arrayBuffer();
}

interface Figures {
  finished: number;
  queued: number;
  loadMs: number;
  scrapeMs: number;
  statusMs: number;
  listMs: number;
  passMs: number;
  contendedMs: number;
  contendedFailed: number;
  rssMb: number;
}

async function run(finished: number): Promise<Figures> {
  const dirs = await makeDirs();
  const config = await testServerConfig(dirs);
  const store = await openStore(config.controller.dataDir);
  const history = new History(store);
  const workloads = Math.max(1, Math.round(finished / PER_WORKLOAD));
  for (let index = 0; index < workloads; index++) {
    const workload = history.workload(`user-${index % OTHER_USERS}`, 'grayscale');
    const size = Math.floor(finished / workloads) + (index < finished % workloads ? 1 : 0);
    for (let image = 0; image < size; image++) history.image(workload, 'done');
  }
  const unrunnable = history.workload('carl', 'blur', ['gpu']);
  const queued = Math.max(10, Math.round(finished / 10));
  for (let image = 0; image < queued; image++) history.image(unrunnable, 'queued');
  const annDone = history.workload('ann', 'grayscale');
  for (let image = 0; image < 20; image++) history.image(annDone, 'done');
  const annRunning = history.workload('ann', 'grayscale');
  for (let image = 0; image < 10; image++) history.image(annRunning, image < 5 ? 'done' : 'running');

  // the books a restarted controller builds over what the datastore holds
  const loadStarted = performance.now();
  const jobs = new JobBook(store, DEFAULT_RETRY_POLICY, config.controller.leaseMs, config.controller.jobTimeoutMs);
  const imageStore = new LocalImageStore(config.controller.imagesDir);
  const images = new ImageLibrary(store, jobs, imageStore, new DiskRoom([], 0), new UserQuotas(NO_QUOTAS));
  const loadMs = performance.now() - loadStarted;
  const registry = new WorkerRegistry();
  const events = new EventEmitter<ControllerEvents>();
  const sweeper = startLeaseSweeper(
    { registry, jobs, store },
    { leaseMs: config.controller.leaseMs, heartbeatMs: config.controller.heartbeatMs, intervalMs: 3_600_000 },
    log,
  );
  const tokens = createTokens(store, await store.signingKey(), {
    user: 3600,
    worker: 3600,
  });
  const controller: Controller = {
    config: config.controller,
    store,
    tokens,
    users: createUsers(store),
    images,
    imageStore,
    storeOrigin: null,
    storeHealth: new StoreHealth(
      async () => undefined,
      () => undefined,
      log,
    ),
    transfers: new DirectTransfers(store, imageStore, jobs, config.controller.jobTimeoutMs, log),
    uploads: new UploadSlots(store, imageStore, log),
    jobs,
    lifecycle: new Lifecycle(store, jobs, images, () => undefined, new LeftoverRemovals(log)),
    retention: null,
    workers: registry,
    history: new WorkerHistory(store),
    activity: new WorkerActivityBook(store),
    scheduling: schedulingPort({ store, jobs, registry }, (listener) => {
      events.on('work', listener);
      return () => events.off('work', listener);
    }),
    sweeper,
    events,
    close: async () => {
      sweeper.stop();
    },
  };
  const record = {
    id: 'gray-1',
    name: 'gray-1',
    instance_id: 'gray-1',
    tags: [],
    rpc_address: 'tcp://127.0.0.1:1',
    slots: 4,
    engine: 'sharp' as const,
    filters: ['grayscale'],
    registered_at: at,
    left_at: null,
  };
  registry.add(record, 'token', resources, Date.now());
  const scheduler = startScheduler(controller.scheduling, { assignTimeoutMs: 3000, tickMs: 3_600_000 }, log);
  const api = await startApi(controller, config.api, log);
  const url = `http://127.0.0.1:${api.port}`;
  const token = tokens.issue('ann', 'user').token;
  // the garbage of building the history is not the requests' (npm run bench:scrape exposes gc)
  (globalThis as { gc?: () => void }).gc?.();

  // what is measured is what the caller should get: her running workload, and both of hers listed
  const seen = (await (await fetch(`${url}/status`, { headers: { Authorization: `Bearer ${token}` } })).json()) as {
    active_workloads: { workload_id: string; filtered_images: string[] }[];
  };
  const active = seen.active_workloads.map((view) => [view.workload_id, view.filtered_images.length]);
  if (JSON.stringify(active) !== JSON.stringify([[annRunning.id, 5]])) throw new Error('unexpected /status');

  const scrapeMs = await measure(() => get(`${url}/metrics`));
  const statusMs = await measure(() => get(`${url}/status`, token));
  const listMs = await measure(() => get(`${url}/workloads`, token));
  const passMs = await measure(() => scheduler.schedule());
  const contended = await statusUnderScrapers(url, token);
  if (jobs.leasedCount() !== 5) throw new Error('the pass placed a job no worker can take');
  const rssMb = Math.round(process.memoryUsage().rss / 2 ** 20);

  scheduler.close();
  await api.close();
  await controller.close();
  // the records were never journaled: nothing to write
  await dirs.remove();
  const { ms: contendedMs, failed: contendedFailed } = contended;
  return { finished, queued, loadMs, scrapeMs, statusMs, listMs, passMs, contendedMs, contendedFailed, rssMb };
}

const MEASURES = ['scrapeMs', 'statusMs', 'listMs', 'passMs', 'contendedMs'] as const;
console.log('finished images, a queue no worker can take; ms per request over HTTP, ms per scheduler pass');
console.log(
  ' finished   queued  load ms  GET /metrics  GET /status  GET /workloads  pass ms  /status, 8 scrapers  rss MB',
);
const results: Figures[] = [];
const contended = (figures: Figures): string =>
  figures.contendedMs.toFixed(2) + (figures.contendedFailed ? ` (${figures.contendedFailed} failed)` : '');
for (const size of SIZES) {
  const figures = await run(size);
  results.push(figures);
  console.log(
    [
      String(figures.finished).padStart(9),
      String(figures.queued).padStart(7),
      figures.loadMs.toFixed(0).padStart(7),
      figures.scrapeMs.toFixed(2).padStart(12),
      figures.statusMs.toFixed(2).padStart(11),
      figures.listMs.toFixed(2).padStart(14),
      figures.passMs.toFixed(3).padStart(7),
      contended(figures).padStart(19),
      String(figures.rssMb).padStart(6),
    ].join('  '),
  );
}
const [first, last] = [results[0], results.at(-1)];
if (first && last && first !== last) {
  const ratios = MEASURES.map((measure) => last[measure] / first[measure]);
  console.log(
    `cost at ${last.finished} / cost at ${first.finished} (target: the same, <= 1.25; ` +
      `a pass is microseconds, so its ratio is noise): ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')}`,
  );
}
