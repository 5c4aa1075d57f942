import { LeftoverRemovals } from '../../controller/leftover-removals.js';
import { Lifecycle } from '../../controller/lifecycle.js';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import { Registry } from 'prom-client';
import { systemMetrics } from '../../api/metrics/collectors.js';
import type { ControllerEvents } from '../../controller/index.js';
import { ImageLibrary, type IncomingImage } from '../../controller/images.js';
import { DiskRoom } from '../../controller/disk-room.js';
import { LocalImageStore } from '../../controller/image-store/index.js';
import { NO_QUOTAS, UserQuotas } from '../../controller/quotas.js';
import { JOB_STATES, noJobs } from '../../controller/job-tally.js';
import type { Store, Workload } from '../../controller/store/index.js';
import { activeWorkloads, createWorkload, listWorkloads, viewWorkload } from '../../controller/workloads.js';
import { addWorkload, booksPerTest, complete, upload, watchReads, type Books, type Reads } from './books.js';
import { applied, leaseId } from './helpers.js';

const PNG_HEADER = Buffer.from('89504e470d0a1a0a', 'hex');

function incoming(bytes: number): IncomingImage {
  const data = Buffer.alloc(bytes);
  PNG_HEADER.copy(data);
  return { content: { kind: 'memory', data }, bytes, mime: 'image/png', width: 10, height: 10 };
}

/** Images and bytes by type, by a walk over every image record (what the scrape did before). */
function walkedImages(store: Store): Record<'original' | 'filtered', { images: number; bytes: number }> {
  const totals = { original: { images: 0, bytes: 0 }, filtered: { images: 0, bytes: 0 } };
  for (const image of Object.values(store.data.images)) {
    totals[image.type].images += 1;
    totals[image.type].bytes += image.bytes;
  }
  return totals;
}

/** Reads of jobs, images and workloads from now on. */
function watchAll(store: Store): { jobs: Reads; images: Reads; workloads: Reads; stop(): void } {
  const watched = {
    jobs: watchReads(store, 'jobs'),
    images: watchReads(store, 'images'),
    workloads: watchReads(store, 'workloads'),
  };
  const stop = (): void => {
    for (const reads of Object.values(watched)) reads.stop();
  };
  return { ...watched, stop };
}

/** Runs the job to done or failed at once. */
function finish(books: Books, jobId: string, outcome: 'done' | 'failed'): void {
  const lease = leaseId(applied(books.jobs.assign(jobId, 'w1')));
  if (outcome === 'failed') applied(books.jobs.fail(jobId, 'w1', lease, 'not an image', false));
  else complete(books, books.store.data.jobs[jobId]!);
}

/** The image library over these books, its files in `dir`, with no reserve and no quotas. */
function libraryOf(books: Books, dir: string): ImageLibrary {
  return new ImageLibrary(
    books.store,
    books.jobs,
    new LocalImageStore(dir),
    new DiskRoom([], 0),
    new UserQuotas(NO_QUOTAS),
  );
}

describe('bounded views: a scrape, a status and a list cost the same however long the history', () => {
  const fixture = booksPerTest();
  let books: Books;
  /** Another user's long history: workloads full of finished jobs. */
  let history: Workload[];

  beforeEach(() => {
    books = fixture.books;
    history = [];
    for (let index = 0; index < 10; index++) {
      const workload = addWorkload(books, 'bob', index % 2 ? 'blur' : 'grayscale');
      history.push(workload);
      for (let image = 0; image < 30; image++) finish(books, upload(books, workload).id, image % 5 ? 'done' : 'failed');
    }
  });

  describe('/metrics', () => {
    function metricsOf(library: ImageLibrary): { registry: Registry; close(): void } {
      const registry = new Registry();
      const source = {
        store: books.store,
        jobs: books.jobs,
        images: library,
        workers: books.registry,
        events: new EventEmitter<ControllerEvents>(),
        lifecycle: new Lifecycle(
          books.store,
          books.jobs,
          library,
          () => undefined,
          new LeftoverRemovals(createLogger('test', 'silent')),
        ),
      };
      return systemMetrics(source, registry);
    }

    async function valuesOf(registry: Registry, name: string): Promise<Map<string, number>> {
      const metric = (await registry.getMetricsAsJSON()).find((found) => found.name === name);
      const values = new Map<string, number>();
      for (const value of metric?.values ?? []) values.set(Object.values(value.labels).join(','), value.value);
      return values;
    }

    it('a scrape reads no job, image or workload record, and tells what a walk over them counts', async () => {
      upload(books, history[0]!);
      const library = libraryOf(books, fixture.dir);
      const metrics = metricsOf(library);
      const watched = watchAll(books.store);
      await metrics.registry.metrics();
      watched.stop();
      expect([watched.jobs.total(), watched.images.total(), watched.workloads.total()]).to.deep.equal([0, 0, 0]);

      const jobs = await valuesOf(metrics.registry, 'dpip_jobs');
      const walked = noJobs();
      for (const job of Object.values(books.store.data.jobs)) walked[job.state] += 1;
      for (const state of JOB_STATES) expect(jobs.get(state), state).to.equal(walked[state]);
      const images = walkedImages(books.store);
      const uploads = await valuesOf(metrics.registry, 'dpip_uploads_total');
      const bytes = await valuesOf(metrics.registry, 'dpip_upload_bytes_total');
      for (const type of ['original', 'filtered'] as const) {
        expect(uploads.get(type), type).to.equal(images[type].images);
        expect(bytes.get(type), type).to.equal(images[type].bytes);
      }
      expect((await valuesOf(metrics.registry, 'dpip_workloads')).get('')).to.equal(10);
      metrics.close();
    });

    it('the image library keeps its totals as images are stored, and one rebuilt at load finds the same', async () => {
      const library = libraryOf(books, fixture.dir);
      await library.prepare(0);
      const workload = history[0]!;
      const original = await library.addOriginal(workload, incoming(700));
      const lease = leaseId(applied(books.jobs.assign(original.job_id!, 'w1')));
      await library.addFiltered({ type: 'filtered', job_id: original.job_id!, lease_id: lease }, 'w1', incoming(300));
      await library.addOriginal(workload, incoming(900));
      expect(library.totals()).to.deep.equal(walkedImages(books.store));
      const totals = structuredClone(library.totals());
      books = await fixture.reopen();
      expect(libraryOf(books, fixture.dir).totals()).to.deep.equal(totals);
    });
  });

  describe('/status and GET /workloads', () => {
    let done: Workload;
    let current: Workload;

    beforeEach(() => {
      done = addWorkload(books, 'ann');
      for (let image = 0; image < 40; image++) finish(books, upload(books, done).id, 'done');
      current = addWorkload(books, 'ann', 'blur');
      const [a, b, c] = [1, 2, 3].map(() => upload(books, current));
      upload(books, current);
      finish(books, a!.id, 'done');
      finish(books, b!.id, 'failed');
      applied(books.jobs.assign(c!.id, 'w2'));
    });

    it("/status reads only the caller's workloads, and of the active ones only their results", () => {
      const watched = watchAll(books.store);
      const active = activeWorkloads(books, 'ann');
      watched.stop();
      expect(active.map((view) => view.workload_id)).to.deep.equal([current.id]);
      expect(active[0]).to.include({ status: 'running', running_jobs: 1, queued_jobs: 1, done_jobs: 1 });
      expect(active[0]!.failures).to.have.length(1);
      expect(watched.workloads.walks + watched.jobs.walks + watched.images.walks, 'walks').to.equal(0);
      expect([...watched.workloads.byKey.keys()].sort()).to.deep.equal([done.id, current.id].sort());
      expect(watched.images.total(), 'images read').to.equal(0);
      // the one done and the one failed job of the active workload: what the view lists
      expect(watched.jobs.byKey.size, 'jobs read').to.equal(2);
    });

    it("GET /workloads reads only the caller's workloads and what their views list, newest first", () => {
      const watched = watchAll(books.store);
      const views = listWorkloads(books, 'ann').workloads;
      watched.stop();
      const newestFirst = [done, current].sort(
        (x, y) => y.created_at.localeCompare(x.created_at) || y.id.localeCompare(x.id),
      );
      expect(views.map((view) => view.workload_id)).to.deep.equal(newestFirst.map((workload) => workload.id));
      expect(views).to.deep.equal(newestFirst.map((workload) => viewWorkload(books, workload)));
      expect(watched.workloads.walks + watched.jobs.walks + watched.images.walks, 'walks').to.equal(0);
      expect([...watched.workloads.byKey.keys()].sort()).to.deep.equal([done.id, current.id].sort());
      expect(watched.images.total(), 'images read').to.equal(0);
      expect(watched.jobs.byKey.size, 'jobs read: the 41 results and the failure listed').to.equal(42);
      expect(listWorkloads(books, 'nobody')).to.deep.equal({ workloads: [], next_cursor: null });
    });

    it('the index of workloads by owner and name is kept at creation and rebuilt at load', async () => {
      expect(() => createWorkload(books.store, 'cy', done.name.toUpperCase(), 'blur', [])).to.throw(/already exists/);
      const named = createWorkload(books.store, 'cy', 'Holiday', 'blur', []);
      expect(() => createWorkload(books.store, 'ann', 'holiday', 'blur', [])).to.throw(/already exists/);
      expect(books.store.workloadIndex.of('cy')).to.deep.equal([named.id]);
      const before = ['ann', 'bob', 'cy'].map((owner) => [...books.store.workloadIndex.of(owner)]);
      books = await fixture.reopen();
      expect(['ann', 'bob', 'cy'].map((owner) => [...books.store.workloadIndex.of(owner)])).to.deep.equal(before);
      expect(books.store.workloadIndex.size).to.equal(13);
      expect(books.store.workloadIndex.nameTaken('HOLIDAY')).to.equal(true);
    });
  });
});
