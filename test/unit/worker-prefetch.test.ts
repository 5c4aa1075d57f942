// A worker takes up to --prefetch jobs beyond its slots: they wait on it, in the order they came, and start as
// soon as a slot frees, so its next job is at hand when one ends. A waiting job can be cancelled, and its
// deadline runs from the assignment.
import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import type { Assignment } from '../../common/protocol.js';
import type { ApiClient } from '../../worker/api-client.js';
import type { FilterEngine } from '../../worker/engines/index.js';
import type { JobFailure } from '../../worker/failure-report.js';
import { MemoryBudget } from '../../worker/memory-budget.js';
import { Slots } from '../../worker/slots.js';
import { assignment as job, unreachedEngine } from './slots-fakes.js';

/** An API that records which originals were asked for; each download lasts until its job is aborted. */
function recordingApi(): { api: ApiClient; downloads: string[] } {
  const downloads: string[] = [];
  const api = {
    download: (id: string, signal: AbortSignal) => {
      downloads.push(id);
      return new Promise<Buffer>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    },
  } as unknown as ApiClient;
  return { api, downloads };
}

const engine = unreachedEngine('sharp');

function slotsOf(size: number, prefetch: number, deadlineMs = 60_000): { slots: Slots; failures: JobFailure[] } {
  const failures: JobFailure[] = [];
  const report = async (_job: Assignment, failure: JobFailure): Promise<void> => {
    failures.push(failure);
  };
  const log = createLogger('test', 'silent');
  const slots = new Slots(
    size,
    engine,
    report,
    log,
    deadlineMs,
    new MemoryBudget(2 ** 30),
    undefined,
    undefined,
    prefetch,
  );
  return { slots, failures };
}

async function waitUntil(done: () => boolean): Promise<void> {
  for (let tries = 0; !done(); tries++) {
    if (tries > 400) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('worker prefetch', () => {
  it('takes jobs beyond its slots, which start in order as slots free', async () => {
    const { api, downloads } = recordingApi();
    const { slots } = slotsOf(1, 2);
    for (const id of ['a', 'b', 'c']) {
      expect(slots.accepts(job(id)), id).to.equal(true);
      slots.start(job(id), api);
    }
    expect(slots.accepts(job('d')), 'one slot and two waiting: full').to.equal(false);
    expect(slots.running).to.equal(3);
    expect(slots.heldLeases().map((lease) => lease.lease_id)).to.have.members(['lease-a', 'lease-b', 'lease-c']);
    await waitUntil(() => downloads.length === 1);
    expect(downloads, 'only the job with the slot runs').to.deep.equal(['image-a']);

    slots.cancel('a');
    await waitUntil(() => downloads.length === 2);
    expect(downloads).to.deep.equal(['image-a', 'image-b']);
    expect(slots.accepts(job('d')), 'a place is free again').to.equal(true);
    slots.cancel('b');
    await waitUntil(() => downloads.length === 3);
    expect(downloads.at(-1)).to.equal('image-c');
    slots.cancel('c');
    await waitUntil(() => slots.running === 0);
  });

  it('drops a waiting job that is cancelled without running it', async () => {
    const { api, downloads } = recordingApi();
    const { slots, failures } = slotsOf(1, 1);
    slots.start(job('a'), api);
    slots.start(job('b'), api);
    slots.cancel('b');
    await waitUntil(() => slots.running === 1);
    slots.cancel('a');
    await waitUntil(() => slots.running === 0);
    expect(downloads).to.deep.equal(['image-a']);
    expect(failures, 'a cancelled job is not a failure').to.deep.equal([]);
  });

  it('on a drain, starts no waiting job and lets the running one finish', async () => {
    const downloads: string[] = [];
    let finishFirst = (): void => undefined;
    const api = {
      download: (id: string, signal: AbortSignal) => {
        downloads.push(id);
        return new Promise<Buffer>((_resolve, reject) => {
          finishFirst = () => reject(new Error('the original is gone'));
          signal.addEventListener('abort', () => reject(signal.reason));
        });
      },
    } as unknown as ApiClient;
    const { slots, failures } = slotsOf(1, 1);
    slots.start(job('a'), api);
    slots.start(job('b'), api);
    await waitUntil(() => downloads.length === 1);
    const drained = slots.drain(10_000);
    finishFirst();
    expect(await drained, 'the waiting job, handed back with the goodbye').to.deep.equal([
      { job_id: 'b', lease_id: 'lease-b' },
    ]);
    await waitUntil(() => slots.running === 0);
    expect(downloads, 'the waiting job never started').to.deep.equal(['image-a']);
    expect(failures.map((failure) => failure.error)).to.deep.equal(['the original is gone']);
  });

  it('without prefetch, takes no more jobs than its slots', () => {
    const { api } = recordingApi();
    const { slots } = slotsOf(2, 0);
    slots.start(job('a'), api);
    expect(slots.accepts(job('b'))).to.equal(true);
    slots.start(job('b'), api);
    expect(slots.accepts(job('c'))).to.equal(false);
    slots.cancel('a');
    slots.cancel('b');
  });

  it("counts a job's deadline from its assignment, waiting included", async () => {
    // the first job's engine work never ends (an engine that ignores its deadline): it keeps its slot
    const stuck: FilterEngine = { ...engine, run: () => new Promise<never>(() => undefined) };
    const downloads: string[] = [];
    const api = {
      download: async (id: string) => {
        downloads.push(id);
        return Buffer.from('an original');
      },
    } as unknown as ApiClient;
    const failures: JobFailure[] = [];
    const report = async (_job: Assignment, failure: JobFailure): Promise<void> => {
      failures.push(failure);
    };
    const log = createLogger('test', 'silent');
    const slots = new Slots(1, stuck, report, log, 150, new MemoryBudget(2 ** 30), undefined, undefined, 1);
    slots.start(job('a'), api);
    slots.start(job('b'), api);
    await waitUntil(() => failures.length === 1);
    expect(failures[0]?.error).to.match(
      /job deadline passed: not done 150ms after it started .* while waiting for a free slot/,
    );
    expect(failures[0]?.retryable).to.equal(true);
    expect(downloads, 'the waiting job never ran').to.deep.equal(['image-a']);
    expect(slots.running, 'the stuck one is still held').to.equal(1);
  });
});
