import { execFile } from 'node:child_process';
import si from 'systeminformation';
import { MAX_GPU_MEMORY_MB, type Gpu } from '../common/protocol.js';

export const NO_GPU: Gpu = { present: false };

/** How often a GPU that reports its load is read again (ms). */
export const GPU_SAMPLE_MS = 5000;

/** One reading of the GPU; rejects when it cannot be read. */
export type GpuRead = () => Promise<Gpu>;

const NVIDIA_SMI = 'nvidia-smi';
// the name last: it is the one field that may hold a comma
const NVIDIA_QUERY = ['--query-gpu=utilization.gpu,memory.free,memory.total,name', '--format=csv,noheader,nounits'];

/** A value within 0..max; undefined for one that is not a finite number. */
function bounded(value: number | undefined, max: number): number | undefined {
  return value !== undefined && Number.isFinite(value) ? Math.min(max, Math.max(0, value)) : undefined;
}

/** A number nvidia-smi printed, or undefined for "[N/A]", "[Not Supported]" and the like. */
function printed(text: string | undefined): number | undefined {
  return text === undefined || text.trim() === '' ? undefined : Number(text);
}

/** A GPU report within the bounds the bus accepts: values out of them clamped, values that are not numbers left out. */
export function boundedGpu(gpu: Omit<Gpu, 'present'>): Gpu {
  const report: Gpu = { present: true };
  if (gpu.model) report.model = gpu.model.slice(0, 200);
  const total = bounded(gpu.memory_total_mb, MAX_GPU_MEMORY_MB);
  const free = bounded(gpu.memory_free_mb, MAX_GPU_MEMORY_MB);
  const utilization = bounded(gpu.utilization, 100);
  if (total !== undefined) report.memory_total_mb = total;
  if (free !== undefined) report.memory_free_mb = total === undefined ? free : Math.min(free, total);
  if (utilization !== undefined) report.utilization = utilization;
  return report;
}

/**
 * The GPU to report from `nvidia-smi --query-gpu=utilization.gpu,memory.free,memory.total,name` output: of
 * several, the one with the most free memory (then the least busy). No line: no GPU.
 */
export function parseNvidiaSmi(output: string): Gpu {
  let best: Gpu = NO_GPU;
  for (const line of output.split('\n')) {
    const [utilization, free, total, ...name] = line.split(',');
    if (!line.trim() || total === undefined) continue;
    const gpu = boundedGpu({
      model: name.join(',').trim(),
      utilization: printed(utilization),
      memory_free_mb: printed(free),
      memory_total_mb: printed(total),
    });
    const better =
      !best.present ||
      (gpu.memory_free_mb ?? 0) > (best.memory_free_mb ?? 0) ||
      ((gpu.memory_free_mb ?? 0) === (best.memory_free_mb ?? 0) && (gpu.utilization ?? 0) < (best.utilization ?? 0));
    if (better) best = gpu;
  }
  return best;
}

/** Runs nvidia-smi once, in a child process (never on the event loop); rejects if it is missing or fails. */
export function readNvidiaSmi(): Promise<Gpu> {
  return new Promise((resolve, reject) => {
    execFile(NVIDIA_SMI, NVIDIA_QUERY, { timeout: 3000, maxBuffer: 64 * 1024, windowsHide: true }, (error, stdout) =>
      error ? reject(error) : resolve(parseNvidiaSmi(stdout)),
    );
  });
}

/**
 * The GPU as systeminformation finds it (the one with the most video memory). It runs lspci and other
 * programs on each call, and learns load and free memory only through nvidia-smi: it is asked once, at start.
 */
export async function readSystemInformation(): Promise<Gpu> {
  try {
    const { controllers } = await si.graphics();
    const best = controllers.filter((c) => (c.vram ?? 0) > 0).sort((a, b) => (b.vram ?? 0) - (a.vram ?? 0))[0];
    if (!best) return NO_GPU;
    const total = best.memoryTotal ?? best.vram ?? 0;
    return boundedGpu({
      model: best.model,
      memory_total_mb: total,
      memory_free_mb: best.memoryFree ?? total,
      ...(best.utilizationGpu === undefined ? {} : { utilization: best.utilizationGpu }),
    });
  } catch {
    return NO_GPU;
  }
}

export interface GpuProbe {
  /** The GPU at start. */
  initial: Gpu;
  /** How to read it again, or null when it does not change (no GPU, or one whose load cannot be read). */
  read: GpuRead | null;
}

/**
 * Finds how to read the GPU: nvidia-smi when it runs and sees a GPU (read again every few seconds),
 * else systeminformation, once. On a machine without either that is one failed spawn and one probe, at start.
 */
export async function probeGpu(
  nvidia: GpuRead = readNvidiaSmi,
  systemInformation: () => Promise<Gpu> = readSystemInformation,
): Promise<GpuProbe> {
  try {
    const first = await nvidia();
    if (first.present) return { initial: first, read: nvidia };
  } catch {
    // no nvidia-smi, or no driver behind it
  }
  return { initial: await systemInformation(), read: null };
}

/**
 * The latest GPU reading, refreshed in the background: `poll` (called on each resource sample) starts a
 * read when none is running and the last one started `everyMs` ago or more, so a heartbeat never waits
 * for the GPU and a slow read never piles up behind another. A read that fails reports no GPU until one
 * succeeds: a GPU whose state is unknown is not offered as free.
 */
export class GpuSampler {
  private latest: Gpu;
  private readonly read: GpuRead | null;
  private reading = false;
  private lastStart = Number.NEGATIVE_INFINITY;

  constructor(
    probe: GpuProbe,
    private readonly everyMs = GPU_SAMPLE_MS,
  ) {
    this.latest = probe.initial;
    this.read = probe.read;
  }

  current(): Gpu {
    return this.latest;
  }

  poll(now: number): void {
    if (!this.read || this.reading || now - this.lastStart < this.everyMs) return;
    this.reading = true;
    this.lastStart = now;
    this.read()
      .then(
        (gpu) => {
          this.latest = gpu;
        },
        () => {
          this.latest = NO_GPU;
        },
      )
      .finally(() => {
        this.reading = false;
      });
  }
}
