import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/log.js';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { defaultMemoryBudget, type PrefetchSetting } from '../worker/index.js';
import { localWorkerNodeFlags } from './node-flags.js';

export interface LocalWorkerOptions {
  count: number;
  /** Where the controller listens: its bind address, or loopback when it binds every interface. */
  controllerHost: string;
  controllerPort: number;
  secret: string;
  engine: string;
  slots: number | undefined;
  /** Each worker's --prefetch; absent: the worker's default. */
  prefetch?: PrefetchSetting;
  /** Each worker's --engine-threads. */
  engineThreads: number;
  /** Each worker's --job-deadline. */
  jobDeadlineMs: number;
  /** The server's images folder: on the same machine, its workers read and write image bytes there by path. */
  imagesDir?: string;
  logLevel: string;
  /** The server's own log format, so that its workers' lines look like its own. */
  logFormat: 'json' | 'pretty';
}

/**
 * The threads sharp may give one job in each of `count` local workers of `slots` slots: this machine's cores
 * shared among every job they run at once (a worker alone would take them all for its own slots, and two of
 * them on two cores ran four libvips threads: about 4% more CPU per image than with two).
 */
export function sharedEngineThreads(count: number, slots: number): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, count * slots)));
}

export interface LocalWorkers {
  stop(): Promise<void>;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./dpip-worker.js', import.meta.url));
const RESTART_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** A worker that ran at least this long before it died is restarted after RESTART_MS again. */
const STABLE_MS = 10_000;

/** Starts worker processes on this machine, restarting any that dies, until stop(). */
export function startLocalWorkers(options: LocalWorkerOptions, log: Logger): LocalWorkers {
  const children = new Map<string, ChildProcess>();
  /**
   * Restart delay per worker name: doubled each time a worker dies soon after its start, so one that
   * cannot start does not flood the log.
   */
  const restartDelay = new Map<string, number>();
  let stopping = false;

  function launch(name: string): void {
    const startedAt = Date.now();
    const args = [
      WORKER_SCRIPT,
      '--controller',
      `${options.controllerHost}:${options.controllerPort}`,
      '--worker-name',
      name,
      '--tags',
      'local',
      '--engine',
      options.engine,
      '--job-deadline',
      `${options.jobDeadlineMs}ms`,
      // the workers share this machine: each gets its share of the default budget (half the memory)
      '--max-memory',
      String(defaultMemoryBudget(options.count)),
      '--log-level',
      options.logLevel,
      '--log-format',
      options.logFormat,
    ];
    if (options.slots) args.push('--slots', String(options.slots));
    if (options.prefetch !== undefined) args.push('--prefetch', String(options.prefetch));
    args.push('--engine-threads', String(options.engineThreads));
    if (options.imagesDir) args.push('--images-dir', options.imagesDir);
    // the server's own DPIP_* settings are not the worker's; the secret travels in the environment, not on
    // the command line where `ps` shows it
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DPIP_')));
    // the IPC channel tells the worker when this process is gone, even when it was killed outright: it then exits too
    // like fork(): the server's node flags (profiling, a heap limit) apply to its workers too, but for those it
    // runs with for its own sake, and with a worker's own (bin/node-flags.ts)
    const child = spawn(process.execPath, [...localWorkerNodeFlags(process.execArgv), ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: withMallocTunables({ ...env, DPIP_SECRET: options.secret }),
    });
    children.set(name, child);
    child.on('exit', (code, signal) => {
      children.delete(name);
      if (stopping) return;
      const delay =
        Date.now() - startedAt >= STABLE_MS
          ? RESTART_MS
          : Math.min(RESTART_MAX_MS, restartDelay.get(name) ?? RESTART_MS);
      restartDelay.set(name, Math.min(RESTART_MAX_MS, delay * 2));
      log.warn({ worker: name, code, signal, restart_in_ms: delay }, 'local worker exited: restarting it');
      setTimeout(() => {
        if (!stopping) launch(name);
      }, delay);
    });
  }

  for (let index = 1; index <= options.count; index++) launch(`local-${index}`);

  return {
    async stop() {
      stopping = true;
      await Promise.all(
        [...children.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              const killer = setTimeout(() => child.kill('SIGKILL'), 35_000);
              child.once('exit', () => {
                clearTimeout(killer);
                resolve();
              });
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
