import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/log.js';

export interface LocalWorkerOptions {
  count: number;
  /** Where the controller listens: its bind address, or loopback when it binds every interface. */
  controllerHost: string;
  controllerPort: number;
  secret: string;
  engine: string;
  slots: number | undefined;
  logLevel: string;
}

export interface LocalWorkers {
  stop(): Promise<void>;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./dpip-worker.js', import.meta.url));

/** Starts worker processes on this machine, restarting any that dies, until stop(). */
export function startLocalWorkers(options: LocalWorkerOptions, log: Logger): LocalWorkers {
  const children = new Map<string, ChildProcess>();
  let stopping = false;

  function launch(name: string): void {
    const args = [WORKER_SCRIPT, '--controller', `${options.controllerHost}:${options.controllerPort}`, '--worker-name', name, '--tags', 'local', '--engine', options.engine, '--log-level', options.logLevel];
    if (options.slots) args.push('--slots', String(options.slots));
    // the server's own DPIP_* settings are not the worker's; the secret travels in the environment, not on the command line where `ps` shows it
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DPIP_')));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, DPIP_SECRET: options.secret } });
    children.set(name, child);
    child.on('exit', (code, signal) => {
      children.delete(name);
      if (stopping) return;
      log.warn({ worker: name, code, signal }, 'local worker exited: restarting it in 1 s');
      setTimeout(() => {
        if (!stopping) launch(name);
      }, 1000);
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
