import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import { LeftoverRemovals } from '../../controller/leftover-removals.js';

const log = createLogger('test', 'silent');
const QUICK = { baseMs: 5, maxMs: 20 };

/** A removal that fails its first `failures` tries; counts them. */
function flaky(failures: number) {
  const state = { tries: 0, done: 0 };
  const remove = async (): Promise<void> => {
    state.tries += 1;
    if (state.tries <= failures) throw new Error(`try ${state.tries} failed`);
  };
  const onDone = (): void => {
    state.done += 1;
  };
  return { state, remove, onDone };
}

async function until(what: string, probe: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the files of a deletion, removed until they are gone', () => {
  let removals: LeftoverRemovals;
  afterEach(() => removals.close());

  it('a removal that works at once is done when remove() settles', async () => {
    removals = new LeftoverRemovals(log, QUICK);
    const removal = flaky(0);
    await removals.remove('a folder', removal.remove, removal.onDone);
    expect(removal.state).to.deep.equal({ tries: 1, done: 1 });
    expect(removals.pending).to.equal(0);
  });

  it('a failed removal settles remove() and is tried again until it works; then, once, its onDone', async () => {
    removals = new LeftoverRemovals(log, QUICK);
    const removal = flaky(3);
    await removals.remove('a folder', removal.remove, removal.onDone);
    expect(removal.state, 'after the first try').to.deep.equal({ tries: 1, done: 0 });
    expect(removals.pending).to.equal(1);
    await until('the fourth try', () => removal.state.done > 0);
    expect(removal.state).to.deep.equal({ tries: 4, done: 1 });
    expect(removals.pending).to.equal(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(removal.state.tries, 'no try after it worked').to.equal(4);
  });

  it('retryNow tries every waiting removal at once (the image store answers again)', async () => {
    removals = new LeftoverRemovals(log, { baseMs: 60_000, maxMs: 60_000 });
    const removal = flaky(1);
    await removals.remove('a folder', removal.remove, removal.onDone);
    expect(removal.state.done).to.equal(0);
    removals.retryNow();
    await until('the retry', () => removal.state.done > 0, 1000);
    expect(removal.state).to.deep.equal({ tries: 2, done: 1 });
  });

  it('past its limit a failed removal is given up: its onDone runs, nothing tries it again', async () => {
    removals = new LeftoverRemovals(log, QUICK, 1);
    const first = flaky(1_000);
    const second = flaky(1_000);
    await removals.remove('first', first.remove, first.onDone);
    await removals.remove('second', second.remove, second.onDone);
    expect(second.state).to.deep.equal({ tries: 1, done: 1 });
    expect(first.state.done).to.equal(0);
    expect(removals.pending).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(second.state.tries).to.equal(1);
    expect(first.state.tries, 'the first one still retried').to.be.above(1);
  });

  it('close stops the retries', async () => {
    removals = new LeftoverRemovals(log, QUICK);
    const removal = flaky(1_000);
    await removals.remove('a folder', removal.remove, removal.onDone);
    removals.close();
    const tries = removal.state.tries;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(removal.state.tries).to.equal(tries);
    expect(removals.pending).to.equal(0);
  });
});
