import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import type { Resources } from '../common/protocol.js';
import { GpuSampler, NO_GPU, probeGpu } from './gpu.js';

/** CPU time of all cores so far: busy and total, in ms. */
function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.irq + times.idle;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

/**
 * Samples CPU load, memory and the GPU on its own timer, so a heartbeat never waits for a probe: it sends
 * the latest sample. Load is the busy share of all cores between two samples (os.cpus()), memory
 * the kernel's MemAvailable (os.freemem()): systeminformation's currentLoad() runs
 * `cat /proc/stat | grep cpu` through a shell, synchronously, on every call (about 20 ms of the
 * worker's main thread each second, plus the processes). The GPU is found at start (gpu.ts) and, when
 * its load can be read, read again in the background every few seconds.
 */
export class ResourceMonitor {
  private latest: Resources;
  private gpu = new GpuSampler({ initial: NO_GPU, read: null });
  private timer: NodeJS.Timeout | null = null;
  private lastCpu = cpuTimes();

  constructor() {
    this.latest = { cpu_load: 0, cores: availableParallelism(), mem_free: 1, mem_total: 1, gpu: NO_GPU };
  }

  async start(intervalMs: number): Promise<void> {
    this.gpu = new GpuSampler(await probeGpu());
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  current(): Resources {
    return this.latest;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private sample(): void {
    const now = cpuTimes();
    const busy = now.busy - this.lastCpu.busy;
    const total = now.total - this.lastCpu.total;
    this.lastCpu = now;
    this.gpu.poll(Date.now());
    this.latest = {
      cpu_load: total > 0 ? Math.min(100, Math.max(0, (100 * busy) / total)) : this.latest.cpu_load,
      cores: availableParallelism(),
      mem_free: freemem(),
      mem_total: Math.max(1, totalmem()),
      gpu: this.gpu.current(),
    };
  }
}
