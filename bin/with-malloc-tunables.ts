// `npm start` and `npm run worker`: runs the server or a worker with the malloc tunables in its
// environment, and with its node flags (bin/node-flags.ts). glibc reads the tunables and
// V8 its heap's sizes only when a process starts, so neither can be set from inside it.
// argv: dpip|dpip-worker, then that program's own arguments.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { isProgram, PROGRAMS, withNodeFlags } from './node-flags.js';

const [program, ...args] = process.argv.slice(2);
if (!isProgram(program)) {
  console.error(`with-malloc-tunables: the first argument must be one of ${PROGRAMS.join(', ')}`);
  process.exit(2);
}
const script = fileURLToPath(new URL(`./${program}.js`, import.meta.url));
// the IPC channel tells the program when this process is gone, even when it was killed outright: it then stops too
const nodeFlags = withNodeFlags(program, process.execArgv);
const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  env: withMallocTunables(process.env),
});

// Ctrl-C reaches both processes already; a signal sent to this one alone is passed on. The
// programs ignore a second stop signal, so the copy is harmless.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
child.on('error', (error) => {
  console.error(`with-malloc-tunables: cannot start ${program}: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
