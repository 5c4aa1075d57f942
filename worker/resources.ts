import { availableParallelism } from 'node:os';
import si from 'systeminformation';
import type { Resources } from '../common/protocol.js';

type Gpu = Resources['gpu'];

async function readGpu(): Promise<Gpu> {
  try {
    const { controllers } = await si.graphics();
    const best = controllers.filter((c) => (c.vram ?? 0) > 0).sort((a, b) => (b.vram ?? 0) - (a.vram ?? 0))[0];
    if (!best) return { present: false };
    const total = best.memoryTotal ?? best.vram ?? 0;
    return { present: true, model: best.model.slice(0, 200), memory_total_mb: total, memory_free_mb: best.memoryFree ?? total };
  } catch {
    return { present: false };
  }
}

/**
 * Samples CPU load, memory and GPU with systeminformation on its own timer, so a heartbeat
 * never waits for a slow probe: it sends the latest sample.
 */
export class ResourceMonitor {
  private latest: Resources;
  private gpu: Gpu = { present: false };
  private timer: NodeJS.Timeout | null = null;

  constructor() {
    this.latest = { cpu_load: 0, cores: availableParallelism(), mem_free: 1, mem_total: 1, gpu: this.gpu };
  }

  async start(intervalMs: number): Promise<void> {
    this.gpu = await readGpu();
    await this.sample();
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  current(): Resources {
    return this.latest;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    try {
      const [load, mem] = await Promise.all([si.currentLoad(), si.mem()]);
      this.latest = {
        cpu_load: Math.min(100, Math.max(0, load.currentLoad || 0)),
        cores: availableParallelism(),
        mem_free: mem.available,
        mem_total: Math.max(1, mem.total),
        gpu: this.gpu,
      };
    } catch {
      // keep the previous sample: a failed probe must not stop heartbeats
    }
  }
}
