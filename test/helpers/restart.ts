// Helpers of the fault tests: a server on ports chosen in advance (so it can be restarted on the same
// ones, or started after its workers), worker processes with chosen flags, and probes of a process
// (CPU time, children) and of the datastore files.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from '../../bin/server.js';
import type { LiveWorker } from '../../controller/index.js';
import { freePorts } from './ports.js';
import { DIST_BIN, spawnNode, waitFor, type Spawned } from './processes.js';
import { TEST_SECRET, type TestDirs, type WorkerOptions } from './system.js';

export interface ServerPorts {
  apiPort: number;
  /** The controller's PUB port; its JSON-RPC port is the next one. */
  controllerPort: number;
}

export async function pickServerPorts(): Promise<ServerPorts> {
  const controllerPort = await freePorts(3);
  let apiPort = await freePorts();
  while (apiPort === controllerPort || apiPort === controllerPort + 1) apiPort = await freePorts();
  return { apiPort, controllerPort };
}

export interface ServerOptions {
  /** Local worker processes (`--workers`); 0 unless given. */
  workers?: number;
  /** More flags, e.g. ['--lease-ms', '2000']. */
  args?: string[];
  /**
   * Started from dirs.root with no --data-dir and no secret, as `npm start` is: the data dir is ./data
   * (dirs.dataDir) and the server keeps its own secret there.
   */
  ownSecret?: boolean;
  /** --log-level; warn unless given. */
  logLevel?: 'warn' | 'info' | 'debug';
}

export interface RunningServer {
  process: Spawned;
  url: string;
  controllerPort: number;
  /** When the API first answered (epoch ms). */
  listeningAt: number;
}

/** The whole server (`dpip`) as its own process on the given ports and directories; resolves once the API answers. */
export async function spawnServerOn(
  dirs: TestDirs,
  ports: ServerPorts,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const args = [
    '--port',
    String(ports.apiPort),
    '--controller-port',
    String(ports.controllerPort),
    '--host',
    '127.0.0.1',
    ...(options.ownSecret ? [] : ['--data-dir', dirs.dataDir]),
    '--images-dir',
    dirs.imagesDir,
    '--workers',
    String(options.workers ?? 0),
    ...(options.ownSecret ? [] : ['--secret', TEST_SECRET]),
    '--users',
    'alice:alice-pw,bob:bob-pass',
    '--log-level',
    options.logLevel ?? 'warn',
    ...(options.args ?? []),
  ];
  const server = options.ownSecret
    ? spawnNode(path.join(DIST_BIN, 'dpip.js'), args, { DPIP_SECRET: '' }, [], dirs.root)
    : spawnNode(path.join(DIST_BIN, 'dpip.js'), args);
  const url = `http://127.0.0.1:${ports.apiPort}`;
  await Promise.race([
    waitFor('the server to listen', async () => (await fetch(`${url}/status`)).status === 401, 20_000, 50),
    server.exited.then(({ code, signal }) => {
      throw new Error(`the server exited (code ${code}, signal ${signal}) before it listened:\n${server.output()}`);
    }),
  ]);
  return { process: server, url, controllerPort: ports.controllerPort, listeningAt: Date.now() };
}

export interface WorkerProcessOptions extends WorkerOptions {
  logLevel?: 'warn' | 'info' | 'debug';
  /** More flags, e.g. ['--drain-ms', '100']. */
  args?: string[];
}

/** A real worker process like spawnWorker's, with a chosen log level and extra flags. */
export function spawnWorkerProcess(options: WorkerProcessOptions): Spawned {
  const args = [
    '--controller',
    `127.0.0.1:${options.controllerPort}`,
    '--worker-name',
    options.name,
    '--engine',
    options.engine ?? 'auto',
    '--log-level',
    options.logLevel ?? 'warn',
  ];
  if (options.slots) args.push('--slots', String(options.slots));
  if (options.tags?.length) args.push('--tags', options.tags.join(','));
  args.push(...(options.args ?? []));
  return spawnNode(path.join(DIST_BIN, 'dpip-worker.js'), args, { DPIP_SECRET: options.secret ?? TEST_SECRET });
}

/** The JSON log lines (pino) a process printed, parsed; other lines are skipped. */
export function logLines(output: string): { msg?: string; [key: string]: unknown }[] {
  const lines: { msg?: string; [key: string]: unknown }[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as { msg?: string });
    } catch {
      // a line cut in the middle by the read: skipped
    }
  }
  return lines;
}

export function countLines(output: string): number {
  return output.split('\n').filter((line) => line.trim() !== '').length;
}

let clockTicks: number | undefined;

/** CPU time (user + system, all threads) a live process has used so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may hold spaces: the fields after it start behind the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Pids of the live processes whose parent is `pid`. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') children.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return children;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface DatastoreFiles {
  /** A snapshot (db.snapshot) exists. */
  snapshot: boolean;
  /** Complete lines of the journal's segments (db.journal.<n>), if there are any. */
  journalEntries: number;
  /** The newest segment's last line is cut (a write torn by a crash); the store skips it. */
  tornTail: boolean;
}

function parsesOrThrow(line: string, where: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw new Error(`${where} does not parse: ${line.slice(0, 120)}`);
  }
}

/**
 * Reads the datastore files as they are on disk right now. Throws if the snapshot is not whole (every
 * line parses, from its header to its end line), or if a journal line other than a torn last one does not
 * parse.
 */
export function readDatastoreFiles(dataDir: string): DatastoreFiles {
  let snapshot = false;
  let text: string | null = null;
  try {
    text = readFileSync(path.join(dataDir, 'db.snapshot'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== null) {
    const lines = text.split('\n');
    if (lines.pop() !== '') throw new Error(`db.snapshot does not end with a newline (${text.length} bytes)`);
    for (const [index, line] of lines.entries()) parsesOrThrow(line, `db.snapshot line ${index + 1}`);
    const end = parsesOrThrow(lines.at(-1) ?? '', 'db.snapshot end line') as { end?: unknown };
    if (typeof end.end !== 'number') throw new Error(`db.snapshot has no end line (${lines.length} lines)`);
    snapshot = true;
  }
  const segments = readdirSync(dataDir)
    .filter((name) => /^db\.journal\.\d+$/.test(name))
    .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]));
  let journalEntries = 0;
  let tornTail = false;
  for (const [at, name] of segments.entries()) {
    let journal = '';
    try {
      journal = readFileSync(path.join(dataDir, name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // dropped after a snapshot
    }
    const lines = journal.split('\n');
    const tail = lines.pop() ?? ''; // '' when the segment ends with a newline
    for (const [index, line] of lines.entries()) parsesOrThrow(line, `${name} line ${index + 1} of ${lines.length}`);
    journalEntries += lines.length;
    if (tail !== '' && at < segments.length - 1) throw new Error(`${name}, not the newest segment, ends torn`);
    tornTail = tail !== '';
  }
  return { snapshot, journalEntries, tornTail };
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- looking inside an in-process server (startTestServer) ---

export type StoreData = Server['controller']['store']['data'];

/** The registry entry of the worker of that name that has not left, if any. */
export function liveWorker(server: Server, name: string): LiveWorker | undefined {
  return server.controller.workers.all().find((worker) => worker.record.name === name && worker.state !== 'left');
}

/** How many filtered image records each original of the workload has (0 for none). */
export function filteredPerOriginal(data: StoreData, workloadId: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const image of Object.values(data.images)) {
    if (image.workload_id === workloadId && image.type === 'original') counts.set(image.id, counts.get(image.id) ?? 0);
  }
  for (const image of Object.values(data.images)) {
    if (image.workload_id === workloadId && image.type === 'filtered' && image.source_image_id) {
      counts.set(image.source_image_id, (counts.get(image.source_image_id) ?? 0) + 1);
    }
  }
  return counts;
}

/** The jobs of a workload, by state. */
export function jobStates(data: StoreData, workloadId: string): Record<string, number> {
  const states: Record<string, number> = {};
  for (const job of Object.values(data.jobs))
    if (job.workload_id === workloadId) states[job.state] = (states[job.state] ?? 0) + 1;
  return states;
}
