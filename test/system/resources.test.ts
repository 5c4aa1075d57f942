import { spawn } from 'node:child_process';
import { availableParallelism, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { ResourceMonitor } from '../../worker/resources.js';

describe('worker resource monitor', function () {
  this.timeout(20_000);

  it('reports memory from the kernel and the machine’s cores', async () => {
    const monitor = new ResourceMonitor();
    await monitor.start(100);
    try {
      const sample = monitor.current();
      expect(sample.cores).to.equal(availableParallelism());
      expect(sample.mem_total).to.equal(totalmem());
      expect(sample.mem_free).to.be.above(0).and.at.most(sample.mem_total);
      expect(sample.cpu_load).to.be.within(0, 100);
    } finally {
      monitor.stop();
    }
  });

  it('shows a core kept busy by another process as load', async () => {
    const monitor = new ResourceMonitor();
    await monitor.start(200);
    const burner = spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end);']);
    try {
      await sleep(1200);
      // one busy core out of `cores`; allow for the machine being shared
      expect(monitor.current().cpu_load).to.be.at.least((100 / availableParallelism()) * 0.6);
    } finally {
      burner.kill();
      monitor.stop();
    }
  });
});
