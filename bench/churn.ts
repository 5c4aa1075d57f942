// Memory and disk return: a real `dpip` server with two local workers takes 10,000 tiny originals
// (64x64 PNG) into a workload, filters them, and the workload is deleted (DELETE /workloads/{id}); a
// warm-up round, then ten more. After each deletion, once the datastore has stopped changing: the
// server's RSS (VmRSS), its heap in use (from GET /metrics: garbage not yet collected included), the
// datastore's size on disk (every file of the data dir: the snapshot, the journal segments, the signing
// key and the cluster secret) and the images folder's size and file count. What a round leaves
// behind shows as a column that grows from one round to the next. Also: how long the delete took,
// and the longest a request (GET /status, one at a time) waited meanwhile.
// Env: CHURN_IMAGES (default 10000), CHURN_ROUNDS (default 10, after the warm-up); CHURN_HEAP=1 starts
// the server with --heapsnapshot-signal and, after each reading, has it write a heap snapshot (which
// collects all garbage first): the live heap, summed from the snapshot. The snapshot itself takes
// memory, so the RSS of the rounds after it is not comparable with a run without.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeTestImage } from '../test/helpers/images.js';
import { waitFor } from '../test/helpers/processes.js';
import {
  describeUploadForm,
  removeRunDirs,
  rssMb,
  startSystem,
  uploadAll,
  uploadForm,
  waitDone,
} from './system-run.js';

const IMAGES = Number(process.env.CHURN_IMAGES ?? 10_000);
const ROUNDS = Number(process.env.CHURN_ROUNDS ?? 10);
const CONCURRENCY = 8;
const MB = 1024 * 1024;
const KB = 1024;

const heapDir = process.env.CHURN_HEAP === '1' ? await mkdtemp(path.join(tmpdir(), 'dpip-heap-')) : null;
if (heapDir) {
  // startSystem passes BENCH_NODE_ARGS to the server (and its workers, which are never signalled)
  const flags = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${heapDir}`;
  process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ''} ${flags}`;
}

interface Folder {
  bytes: number;
  files: number;
  dirs: number;
}

interface Reading {
  rss: number;
  /** V8's heap in use and the memory outside it (buffers), MB, as the server's own metrics report them. */
  heapUsed: number;
  external: number;
  /** The live heap after a full collection (CHURN_HEAP=1), MB. */
  liveHeap: number | null;
  /** Images the server says it keeps (dpip_images, both types). */
  keptImages: number;
  data: Folder & { snapshot: number; journal: number };
  images: Folder;
}

/** Every file below `dir`: total bytes, files, folders (the root not counted). */
async function folder(dir: string): Promise<Folder> {
  const total: Folder = { bytes: 0, files: 0, dirs: 0 };
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isDirectory()) total.dirs += 1;
    if (!entry.isFile()) continue;
    total.files += 1;
    // a file can go between the listing and the stat (a journal segment a snapshot covered)
    total.bytes += (await stat(path.join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function datastore(dir: string): Promise<Reading['data']> {
  const whole = await folder(dir);
  let snapshot = 0;
  let journal = 0;
  for (const name of await readdir(dir)) {
    const size = (await stat(path.join(dir, name)).catch(() => ({ size: 0 }))).size;
    if (name === 'db.snapshot') snapshot += size;
    else if (/^db\.journal(\.\d+)?$/.test(name)) journal += size;
  }
  return { ...whole, snapshot, journal };
}

/** The sum of a metric's samples (every label set) in a Prometheus text exposition. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const rest = line.startsWith(name) ? line.slice(name.length) : '';
    if (rest.startsWith(' ') || rest.startsWith('{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The server's own arguments (the directories startSystem made for it). */
async function serverDirs(pid: number): Promise<{ dataDir: string; imagesDir: string }> {
  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  const value = (flag: string): string => {
    const at = args.indexOf(flag);
    if (at < 0 || !args[at + 1]) throw new Error(`the server was started without ${flag}`);
    return args[at + 1]!;
  };
  return { dataDir: value('--data-dir'), imagesDir: value('--images-dir') };
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[] } };
  nodes: number[];
}

const tiny: Buffer[] = [];
for (let seed = 1; seed <= 16; seed++) tiny.push(await makeTestImage(64, 64, 'image/png', seed));
const images = Array.from({ length: IMAGES }, (_, index) => tiny[index % tiny.length]!);
const form = uploadForm();

const system = await startSystem('sharp', 2);
const { client, serverPid } = system;
const dirs = await serverDirs(serverPid);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** ms until GET /status (no token: a 401) is answered, on one kept-alive connection. */
function status(): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(`${client.url}/status`, { agent }, (response) => {
        response.resume();
        response.on('end', () => resolve(performance.now() - started));
      })
      .on('error', reject);
  });
}

/** The server writes a heap snapshot (after a full collection); its objects' sizes summed, MB. */
async function liveHeap(directory: string): Promise<number> {
  const before = new Set(await readdir(directory));
  process.kill(serverPid, 'SIGUSR2');
  const file = await waitFor(
    'the heap snapshot',
    async () => (await readdir(directory)).find((name) => !before.has(name) && name.endsWith('.heapsnapshot')),
    60_000,
  );
  // the snapshot is written on the server's main thread: once a request is answered, it is whole
  await status();
  const snapshot = JSON.parse(await readFile(path.join(directory, file), 'utf8')) as HeapSnapshot;
  await rm(path.join(directory, file));
  const fields = snapshot.snapshot.meta.node_fields;
  const size = fields.indexOf('self_size');
  let bytes = 0;
  for (let at = size; at < snapshot.nodes.length; at += fields.length) bytes += snapshot.nodes[at]!;
  return bytes / MB;
}

async function read(): Promise<Reading> {
  const text = await (await fetch(`${client.url}/metrics`)).text();
  return {
    rss: await rssMb(serverPid),
    heapUsed: metric(text, 'nodejs_heap_size_used_bytes') / MB,
    external: metric(text, 'nodejs_external_memory_bytes') / MB,
    liveHeap: null,
    keptImages: metric(text, 'dpip_images'),
    data: await datastore(dirs.dataDir),
    images: await folder(dirs.imagesDir),
  };
}

/**
 * A reading once the datastore has held still for a second (a snapshot the deletion's journal lines
 * set off runs in the background) and the images folder has no file left (at most 30 s).
 */
async function settled(): Promise<Reading> {
  let last = await read();
  const reading = await waitFor(
    'the datastore to settle',
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = await read();
      const still = now.data.bytes === last.data.bytes && now.data.files === last.data.files;
      last = now;
      return still && now.images.files === 0 && now;
    },
    30_000,
    0,
  );
  if (heapDir) reading.liveHeap = await liveHeap(heapDir);
  return reading;
}

interface Round {
  seconds: number;
  deleteMs: number;
  /** The longest GET /status took while the delete ran. */
  stallMs: number;
  full: Reading;
  after: Reading;
}

async function round(): Promise<Round> {
  const started = performance.now();
  const workload = await client.createWorkload();
  await uploadAll(client, workload.workload_id, images, 'image/png', CONCURRENCY, form);
  const done = await waitDone(client, workload.workload_id, IMAGES);
  const full = await read();
  let deleting = true;
  let stallMs = 0;
  const probe = (async () => {
    while (deleting) {
      stallMs = Math.max(stallMs, await status());
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const deleteStarted = performance.now();
  const reply = await client.deleteWorkload(workload.workload_id);
  const deleteMs = performance.now() - deleteStarted;
  deleting = false;
  await probe;
  if (reply.status !== 200 || reply.body.removed_images !== 2 * IMAGES)
    throw new Error(`delete: ${reply.status} ${JSON.stringify(reply.body)}`);
  const after = await settled();
  if (after.keptImages !== 0) throw new Error(`${after.keptImages} images still kept after the delete`);
  return { seconds: (done - started) / 1000, deleteMs, stallMs, full, after };
}

const kb = (bytes: number): string => (bytes / KB).toFixed(1);
const COLUMNS: [string, number][] = [
  ['round', 7],
  ['RSS', 6],
  ['heap', 6],
  ['extern', 6],
  ['live', 6],
  ['data KB', 8],
  ['snapshot + journal', 18],
  ['files', 5],
  ['imgs MB', 7],
  ['files', 5],
  ['dirs', 4],
];
const row = (cells: (string | number)[]): string =>
  cells.map((value, index) => String(value).padStart(COLUMNS[index]?.[1] ?? 0)).join('  ');

function line(label: string, reading: Reading, extra = ''): string {
  const { data, images } = reading;
  return row([
    label,
    reading.rss.toFixed(1),
    reading.heapUsed.toFixed(1),
    reading.external.toFixed(1),
    reading.liveHeap === null ? '-' : reading.liveHeap.toFixed(2),
    kb(data.bytes),
    `${kb(data.snapshot)} + ${kb(data.journal)}`,
    data.files,
    (images.bytes / MB).toFixed(2),
    images.files,
    images.dirs,
    extra,
  ]);
}

const range = (values: number[], digits = 1): string =>
  `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;
const ratio = (end: number, start: number): string =>
  start === 0 ? (end === 0 ? '1.00' : 'inf') : (end / start).toFixed(2);

/** Each measure after the warm-up and after the last round, their ratio, and its range over the rounds. */
function summary(fresh: Reading, rounds: Round[]): void {
  const start = rounds[0]!.after;
  const end = rounds.at(-1)!.after;
  const measured = rounds.slice(1).map((one) => one.after);
  const over = (value: (reading: Reading) => number, digits = 1): string =>
    `rounds 1-${measured.length}: ${range(measured.map(value), digits)}`;
  const ends = (value: (reading: Reading) => number, digits = 1): string =>
    `${value(start).toFixed(digits)} -> ${value(end).toFixed(digits)} (end/start ${ratio(value(end), value(start))})`;
  const fullRss = range(rounds.map((one) => one.full.rss));
  console.log(
    `server RSS, MB: ${ends((r) => r.rss)}; ${over((r) => r.rss)}; fresh server ${fresh.rss.toFixed(1)}, ` +
      `full ${fullRss}`,
  );
  console.log(`server heap in use (garbage included), MB: ${ends((r) => r.heapUsed)}; ${over((r) => r.heapUsed)}`);
  if (fresh.liveHeap !== null) {
    const live = (reading: Reading): number => reading.liveHeap ?? 0;
    console.log(
      `server live heap (after a full collection), MB: ${ends(live, 2)}; ${over(live, 2)}; ` +
        `fresh server ${fresh.liveHeap.toFixed(2)}`,
    );
  }
  const dataKb = (reading: Reading): number => reading.data.bytes / KB;
  const fullData = range(rounds.map((one) => one.full.data.bytes / MB));
  console.log(
    `datastore, KB: ${ends(dataKb)}, in ${start.data.files} -> ${end.data.files} files; ${over(dataKb)}; ` +
      `fresh ${kb(fresh.data.bytes)}; full ${fullData} MB`,
  );
  const full = rounds.at(-1)!.full.images;
  console.log(
    `images folder: ${ends((r) => r.images.bytes / KB)} KB, files ${ends((r) => r.images.files, 0)}, ` +
      `folders ${ends((r) => r.images.dirs, 0)}; full ${full.files} files, ${(full.bytes / MB).toFixed(1)} MB`,
  );
  const deletes = rounds.map((one) => one.deleteMs);
  const stalls = rounds.map((one) => one.stallMs);
  console.log(
    `delete of ${IMAGES} originals and their results: ${range(deletes, 0)} ms; ` +
      `longest GET /status meanwhile ${range(stalls, 0)} ms`,
  );
}

try {
  console.log(
    `churn: ${IMAGES} originals of 64x64 PNG per round (uploaded ${CONCURRENCY} at a time, filtered by two local ` +
      `sharp workers), then DELETE /workloads/{id}; a warm-up round, then ${ROUNDS}`,
  );
  console.log(describeUploadForm(form));
  console.log(
    'readings once the delete has settled (full: before it); server memory in MB (live: CHURN_HEAP=1), ' +
      'datastore in KB, images in MB',
  );
  console.log(row([...COLUMNS.map(([name]) => name), 'round s, delete ms, longest /status ms']));
  const fresh = await settled();
  console.log(line('fresh', fresh));
  const rounds: Round[] = [];
  for (let number = 0; number <= ROUNDS; number++) {
    const result = await round();
    rounds.push(result);
    if (number === 0) console.log(line('full', result.full));
    const timing = `${result.seconds.toFixed(1)}, ${result.deleteMs.toFixed(0)}, ${result.stallMs.toFixed(0)}`;
    console.log(line(number === 0 ? 'warm-up' : String(number), result.after, timing));
  }
  console.log(line('full', rounds.at(-1)!.full, '(the last round, before its delete)'));
  summary(fresh, rounds);
} finally {
  agent.destroy();
  await system.stop();
  await removeRunDirs();
  if (heapDir) await rm(heapDir, { recursive: true, force: true });
}
