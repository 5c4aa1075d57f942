// How long deleting a large workload holds the server's event loop: a workload of n done originals, each with
// its result, in a real store (the data folder's journal) with the real job book and image library, deleted
// through the lifecycle as DELETE /workloads/{id} does. Prints, per size, the synchronous step (records taken
// out), the whole deletion (its commit written and synced, its empty folder removed) and the longest the loop
// was held meanwhile (a 1 ms timer's longest gap: what a request or heartbeat arriving then waits).
// argv: sizes (default 10000 30000 100000).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../common/log.js';
import { DiskRoom } from '../controller/disk-room.js';
import { LocalImageStore } from '../controller/image-store/index.js';
import { ImageLibrary } from '../controller/images.js';
import { LeftoverRemovals } from '../controller/leftover-removals.js';
import { Lifecycle } from '../controller/lifecycle.js';
import { UserQuotas } from '../controller/quotas.js';
import { addWorkload, complete, openBooks, upload } from '../test/unit/books.js';
import { applied } from '../test/unit/helpers.js';

const sizes = process.argv.slice(2).map(Number);

async function measure(originals: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dpip-deletion-'));
  const books = await openBooks(dir, { now: Date.parse('2026-11-01T00:00:00Z') });
  try {
    const workload = addWorkload(books, 'ann');
    for (let index = 0; index < originals; index++) {
      const job = upload(books, workload);
      applied(books.jobs.assign(job.id, 'w1'));
      complete(books, job);
      if (index % 5000 === 4999) await books.store.commit();
    }
    await books.store.commit();
    const files = new LocalImageStore(dir);
    const library = new ImageLibrary(
      books.store,
      books.jobs,
      files,
      new DiskRoom([], 0),
      new UserQuotas({ images: null, bytes: null }),
    );
    const removals = new LeftoverRemovals(createLogger('bench', 'silent'));
    const lifecycle = new Lifecycle(books.store, books.jobs, library, () => undefined, removals);
    await library.makeFolder(workload);
    let longest = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    const deleting = lifecycle.deleteWorkload(workload, 'user');
    const synchronous = performance.now() - started;
    await deleting;
    const whole = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20));
    clearInterval(probe);
    removals.close();
    const size = `${originals} originals (${2 * originals} images, ${originals} jobs)`;
    const times = `synchronous step ${synchronous.toFixed(0)} ms, whole deletion ${whole.toFixed(0)} ms`;
    return `${size}: ${times}, event loop held at most ${longest.toFixed(0)} ms`;
  } finally {
    await books.store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

for (const originals of sizes.length > 0 ? sizes : [10_000, 30_000, 100_000]) console.log(await measure(originals));
