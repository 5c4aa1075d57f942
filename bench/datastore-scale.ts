// The embedded datastore at 100,000 and 1,000,000 images (each an original, its filtered image and its
// finished job: three records). For each size: the restart (open: read the snapshot line by line), the
// memory per image, the cost of a commit, and a snapshot written while the server runs, with the
// longest stall of the event loop it caused (a 1 ms timer measures the gaps). The snapshot the restart
// reads is written by this bench in the store's own format, which is far quicker than journaling
// three million records one commit at a time.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { openStore } from '../controller/store/index.js';
import { makeDirs } from '../test/helpers/system.js';

const SIZES = (process.env.IMAGES ?? '100000,1000000').split(',').map(Number);
const COMMITS = 200;

function records(index: number): [string, string, unknown][] {
  const at = new Date(Date.UTC(2030, 0, 1) + index * 1000).toISOString();
  const original = `original-${index.toString(16).padStart(8, '0')}-4bba-4196-b4b1-11db476827f4`;
  const filtered = `filtered-${index.toString(16).padStart(8, '0')}-4bba-4196-b4b1-11db476827f4`;
  const job = `job-${index.toString(16).padStart(8, '0')}-4bba-4196-b4b1-11db476827f4`;
  const workload = `workload-${Math.floor(index / 1000)}`;
  const image = (id: string, type: string, source: string | null, jobId: string | null, seq: number) => ({
    id,
    workload_id: workload,
    owner: 'alice',
    type,
    source_image_id: source,
    job_id: jobId,
    file: `${workload}/${id}.png`,
    mime: 'image/png',
    bytes: 123456,
    width: 1920,
    height: 1080,
    created_at: at,
    seq,
  });
  return [
    ['images', original, image(original, 'original', null, job, index * 2 + 1)],
    ['images', filtered, image(filtered, 'filtered', original, null, index * 2 + 2)],
    [
      'jobs',
      job,
      {
        id: job,
        workload_id: workload,
        image_id: original,
        state: 'done',
        attempts: 1,
        lease: null,
        not_before: 0,
        error: null,
        filtered_image_id: filtered,
        created_at: at,
        updated_at: at,
        started_at: at,
        finished_at: at,
      },
    ],
  ];
}

async function writeSnapshot(dataDir: string, images: number): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const out = createWriteStream(path.join(dataDir, 'db.snapshot'));
  const write = async (line: unknown): Promise<void> => {
    if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
  };
  await write({ dpip_snapshot: 1 });
  await write({ c: 'users', k: 'alice', v: { username: 'alice', password_hash: 'x', created_at: '2030' } });
  let count = 1;
  for (let workload = 0; workload * 1000 < images; workload++) {
    const id = `workload-${workload}`;
    const created = '2030-01-01T00:00:00.000Z';
    const record = { id, owner: 'alice', name: id, filter: 'grayscale', tags: [], created_at: created };
    await write({ c: 'workloads', k: id, v: record });
    count += 1;
  }
  for (let index = 0; index < images; index++) {
    for (const [c, k, v] of records(index)) await write({ c, k, v });
    count += 3;
  }
  await write({ end: count });
  out.end();
  await once(out, 'finish');
}

/** Runs `work` while a 1 ms timer measures how long the event loop went without a turn. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 1);
  try {
    const result = await work();
    return { result, stallMs };
  } finally {
    clearInterval(timer);
  }
}

console.log(`datastore at scale: ${SIZES.join(', ')} images (3 records each), ${COMMITS} commits per size`);
console.log(
  'images      restart s   RSS MB   KB/image   commit ms   snapshot s' +
    '   longest stall ms (commits / snapshot)   snapshot MB',
);
for (const images of SIZES) {
  const dirs = await makeDirs();
  await writeSnapshot(dirs.dataDir, images);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const opened = performance.now();
  const store = await openStore(dirs.dataDir);
  const restartS = (performance.now() - opened) / 1000;
  global.gc?.();
  const rss = process.memoryUsage().rss;

  const { result: commitMs, stallMs: commitStall } = await longestStall(async () => {
    const started = performance.now();
    for (let index = 0; index < COMMITS; index++) {
      for (const [c, k, v] of records(images + index)) {
        const collection = c as 'images' | 'jobs';
        store.change(collection, k);
        (store.data[collection] as Record<string, unknown>)[k] = v;
      }
      await store.commit();
    }
    return (performance.now() - started) / COMMITS;
  });
  const { result: snapshotS, stallMs } = await longestStall(async () => {
    const started = performance.now();
    await store.compact();
    return (performance.now() - started) / 1000;
  });
  const snapshotMb = (await import('node:fs')).statSync(path.join(dirs.dataDir, 'db.snapshot')).size / 1048576;
  console.log(
    `${String(images).padStart(9)}   ${restartS.toFixed(2).padStart(9)}   ` +
      `${String(Math.round(rss / 1048576)).padStart(6)}` +
      `   ${((rss - rssBefore) / 1024 / images).toFixed(2).padStart(8)}   ${commitMs.toFixed(3).padStart(9)}` +
      `   ${snapshotS.toFixed(2).padStart(10)}   ${`${commitStall.toFixed(1)} / ${stallMs.toFixed(1)}`.padStart(37)}` +
      `   ${snapshotMb.toFixed(0).padStart(11)}`,
  );
  await store.close();
  await dirs.remove();
}
