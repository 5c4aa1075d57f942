import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import { JobBook } from '../../controller/job-book.js';
import { startLeaseSweeper, type LeaseSweeper } from '../../controller/lease-sweeper.js';
import { DEFAULT_RETRY_POLICY } from '../../controller/jobs/index.js';
import { openStore, type Store } from '../../controller/store/index.js';
import { WorkerRegistry } from '../../controller/workers/index.js';
import { tempDir, type TempDir } from './helpers.js';

const RESOURCES = { cpu_load: 0, cores: 1, mem_free: 1, mem_total: 2, gpu: { present: false } };

/** Keeps the event loop busy for `ms`, as an overloaded controller would be. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("lease sweep: the controller's own stalls are not the workers' fault", function () {
  this.timeout(10_000);
  let dir: TempDir;
  let store: Store;
  let sweeper: LeaseSweeper | undefined;

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore(dir.path);
  });

  afterEach(async () => {
    sweeper?.stop();
    await store.close();
    await dir.remove();
  });

  it('a worker heard just before the event loop stalled for longer than the lease is not declared dead', async () => {
    const registry = new WorkerRegistry();
    const jobs = new JobBook(store, DEFAULT_RETRY_POLICY, 600, 60_000);
    const record = {
      id: 'w1',
      name: 'w1',
      instance_id: 'i1',
      tags: [],
      rpc_address: 'tcp://127.0.0.1:1',
      slots: 1,
      engine: 'jimp' as const,
      filters: ['blur'],
      registered_at: new Date().toISOString(),
      left_at: null,
    };
    const worker = registry.add(record, 'token', RESOURCES, Date.now());
    sweeper = startLeaseSweeper(
      { registry, jobs, store },
      { leaseMs: 600, heartbeatMs: 200, intervalMs: 50 },
      createLogger('test', 'silent'),
    );
    await sleep(60);
    const heard = Date.now();
    registry.heard(worker, RESOURCES, heard);
    stall(900);
    await sleep(120);
    expect(sweeper.stalledMs(heard), 'the stall the sweep measured').to.be.within(700, 1000);
    expect(worker.state, 'silent for 1 s, but 0.9 s of it the controller could not listen').to.equal('alive');
    // silent on its own account: dead after a lease
    await sleep(700);
    expect(worker.state).to.equal('dead');
  });
});
