// The worker admits a job only if its estimated peak fits its memory budget beside the running jobs'.
import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import type { ApiClient } from '../../worker/api-client.js';
import { JOB_BASE_BYTES, jobPeakBytes, MemoryBudget } from '../../worker/memory-budget.js';
import { Slots } from '../../worker/slots.js';
import { assignment as job, unreachedEngine } from './slots-fakes.js';

const MB = 2 ** 20;

/** An API whose downloads last until the job is aborted: the job holds its slot and its memory until then. */
const hangingApi = {
  download: (_id: string, signal: AbortSignal) =>
    new Promise<Buffer>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
} as unknown as ApiClient;

const engine = unreachedEngine('jimp');

describe('worker memory budget', () => {
  it('estimates a job from its pixels, and nothing for one of unknown size', () => {
    expect(jobPeakBytes('jimp', 4000, 3000)).to.equal(JOB_BASE_BYTES + 12_000_000 * 24);
    expect(jobPeakBytes('sharp', undefined, undefined)).to.equal(0);
  });

  it('declines a job that does not fit beside the running ones; a job over the budget runs alone', async () => {
    const slots = new Slots(
      4,
      engine,
      async () => undefined,
      createLogger('test', 'silent'),
      60_000,
      new MemoryBudget(700 * MB),
    );
    // 12 Mpx: ~290 MB each; two fit in 700 MB, a third does not, though slots are free
    expect(slots.accepts(job('a', 4000, 3000))).to.equal(true);
    slots.start(job('a', 4000, 3000), hangingApi);
    expect(slots.accepts(job('b', 4000, 3000))).to.equal(true);
    slots.start(job('b', 4000, 3000), hangingApi);
    expect(slots.accepts(job('c', 4000, 3000))).to.equal(false);
    // a small one still fits; one of unknown size is admitted by its slot alone
    expect(slots.accepts(job('d', 640, 480))).to.equal(true);
    expect(slots.accepts(job('e'))).to.equal(true);

    // the memory comes back when the jobs end
    slots.cancel('a');
    slots.cancel('b');
    await waitUntil(() => slots.running === 0);
    // 7000x7000 (~1.2 GB) is over the whole budget: it runs, but alone
    expect(slots.accepts(job('big', 7000, 7000))).to.equal(true);
    slots.start(job('big', 7000, 7000), hangingApi);
    expect(slots.accepts(job('small', 64, 48))).to.equal(false);
    slots.cancel('big');
    await waitUntil(() => slots.running === 0);
    expect(slots.accepts(job('small', 64, 48))).to.equal(true);
  });
});

async function waitUntil(done: () => boolean): Promise<void> {
  for (let tries = 0; !done(); tries++) {
    if (tries > 200) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
