// One process that asks for a data dir's lock at a given instant, as a server starting does, and prints
// "held" or "refused: <reason>", then keeps what it got until it is killed. argv: data dir, the instant (epoch ms),
// how long it waits for a holder to go (ms).
import { lockDataDir } from '../../controller/store/data-dir-lock.js';

const [dataDir, at, graceMs] = process.argv.slice(2);
// spin, not a timer: every process asks within the same millisecond or so
while (Date.now() < Number(at)) {}
try {
  await lockDataDir(dataDir!, Number(graceMs));
  process.stdout.write('held\n');
  setInterval(() => undefined, 60_000);
} catch (error) {
  process.stdout.write(`refused: ${error instanceof Error ? error.message : String(error)}\n`);
}
