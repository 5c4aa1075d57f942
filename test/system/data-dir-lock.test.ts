// One server to a lowdb data dir: a second one started on it refuses to start (two would each write the journal
// under the other), and so does dpip-import while a server holds it; a lock left by a killed server is taken over.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { openStore } from '../../controller/store/index.js';
import { DIST_BIN, spawnNode, waitFor } from '../helpers/processes.js';
import { freshDirsEachTest, launchServer, spawnServer } from '../helpers/system.js';

/** A process that asks for the lock at a given instant: test/helpers/data-dir-lock-child.ts. */
const LOCK_CHILD = fileURLToPath(new URL('../helpers/data-dir-lock-child.js', import.meta.url));

describe('the lowdb data dir is held by one server', function () {
  this.timeout(60_000);
  const fresh = freshDirsEachTest();

  const lockFile = (): string => path.join(fresh.dirs.dataDir, 'LOCK');
  const holderPid = async (): Promise<number> =>
    (JSON.parse(await readFile(lockFile(), 'utf8')) as { pid: number }).pid;

  it('a second server on the same data dir refuses to start, naming the first; the first goes on', async () => {
    const first = await spawnServer(fresh.dirs);
    const pid = first.process.child.pid!;
    expect(await holderPid()).to.equal(pid);
    const second = await launchServer(fresh.dirs);
    const { code } = await second.process.exited;
    expect(code).to.equal(1);
    expect(second.process.output()).to.include(`dpip: cannot start: another process (pid ${pid}, since `);
    expect(second.process.output()).to.include(`holds the data dir ${fresh.dirs.dataDir}: stop that server first`);
    expect((await fetch(`${first.url}/status`)).status).to.equal(401);
    expect(await holderPid()).to.equal(pid);
  });

  it('dpip-import refuses a data dir a running server holds', async () => {
    const running = await spawnServer(fresh.dirs);
    const run = spawnNode(path.join(DIST_BIN, 'dpip-import.js'), [
      '--data-dir',
      fresh.dirs.dataDir,
      '--datastore',
      'postgres://nobody@127.0.0.1:1/none',
    ]);
    expect((await run.exited).code).to.equal(1);
    expect(run.output()).to.include(`another process (pid ${running.process.child.pid!}, since `);
  });

  it('a lock left by a killed server is taken over; a server stopped with SIGTERM leaves none', async () => {
    const killed = await spawnServer(fresh.dirs);
    await killed.process.kill('SIGKILL');
    expect(await holderPid()).to.equal(killed.process.child.pid);
    const next = await spawnServer(fresh.dirs);
    expect(await holderPid()).to.equal(next.process.child.pid);
    await next.process.kill('SIGTERM');
    expect(existsSync(lockFile())).to.equal(false);
  });

  it('six starts at one instant on a lock a killed server left: one holds it, the others are refused', async () => {
    const hostname = os.hostname();
    await mkdir(fresh.dirs.dataDir, { recursive: true });
    for (let round = 1; round <= 3; round++) {
      // what a server killed on this machine leaves: its pid is no process any more
      const gone = spawnNode(process.execPath, ['-e', '']);
      await gone.exited;
      await writeFile(
        lockFile(),
        JSON.stringify({ pid: gone.child.pid, host: hostname, since: '2026-01-01T00:00:00Z' }),
      );
      const at = String(Date.now() + 700);
      const starts = Array.from({ length: 6 }, () => spawnNode(LOCK_CHILD, [fresh.dirs.dataDir, at, '200']));
      try {
        const verdicts = await Promise.all(
          starts.map((start) => waitFor('its verdict', async () => /^(held|refused.*)$/m.exec(start.output())?.[1])),
        );
        expect(
          verdicts.filter((verdict) => verdict === 'held'),
          `round ${round}: ${verdicts.join('; ')}`,
        ).to.have.length(1);
        const holder = starts[verdicts.indexOf('held')]!.child.pid;
        expect(await holderPid(), 'the LOCK names the one holder').to.equal(holder);
        for (const verdict of verdicts.filter((one) => one !== 'held'))
          expect(verdict).to.include(`another process (pid ${holder}, since `);
      } finally {
        await Promise.all(starts.map((start) => start.kill('SIGKILL')));
      }
    }
  });

  it('one process may open it again (a restart in place); a lock of another machine is refused', async () => {
    const store = await openStore(fresh.dirs.dataDir);
    const again = await openStore(fresh.dirs.dataDir);
    await again.close();
    await store.close();
    await writeFile(lockFile(), JSON.stringify({ pid: 4242, host: 'elsewhere', since: '2026-01-01T00:00:00.000Z' }));
    let refused: unknown = null;
    await openStore(fresh.dirs.dataDir).catch((error: unknown) => {
      refused = error;
    });
    expect(String(refused)).to.include(
      `the data dir ${fresh.dirs.dataDir} is held by a server on elsewhere (pid 4242, since 2026-01-01T00:00:00.000Z)`,
    );
    expect(String(refused)).to.include(`if none runs there any more, remove ${lockFile()}`);
  });
});
