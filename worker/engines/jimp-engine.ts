import { Worker } from 'node:worker_threads';
import type { FilterName } from '../../common/filters/index.js';
import { chainOfFilter, OPERATION_SPECS, type Operation } from '../../common/operations/index.js';
import { UndecodableImageError } from './errors.js';
import { checkPixels } from './format.js';
import type { JimpRequest, JimpResponse } from './jimp-protocol.js';
import { planChain } from './plan.js';
import type { ApplyOptions, EngineCapabilities, FilterEngine, FilterResult, OutputMime } from './types.js';

const THREAD_SCRIPT = new URL('./jimp-thread.js', import.meta.url);

/**
 * Every operation; PNG and JPEG only: jimp's formats have no WebP or AVIF encoder (the WebAssembly
 * plugins that add them, @jimp/wasm-webp and @jimp/wasm-avif, are not dependencies here); sharp workers
 * write both.
 */
export const JIMP_CAPABILITIES: EngineCapabilities = Object.freeze({
  operations: Object.freeze(OPERATION_SPECS.map((spec) => spec.name)),
  formats: Object.freeze(['png', 'jpeg'] as const),
});

interface Job {
  request: JimpRequest;
  mime: OutputMime;
  resolve(result: FilterResult): void;
  reject(err: unknown): void;
}

/**
 * Runs jobs in a pool of worker threads (one job per thread at a time, the rest queued), so decoding,
 * the chain's steps and encoding never block the caller's event loop.
 * `threadScript` is replaceable for tests.
 */
export class JimpEngine implements FilterEngine {
  readonly name = 'jimp';
  readonly capabilities = JIMP_CAPABILITIES;
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  /** Threads terminated on purpose (their job was abandoned): their exit is expected. */
  private readonly retired = new Set<Worker>();
  private closed = false;
  private broken: Error | undefined;

  constructor(
    concurrency: number,
    private readonly threadScript: URL = THREAD_SCRIPT,
  ) {
    const size = Math.max(1, Math.floor(concurrency) || 1);
    for (let i = 0; i < size; i++) this.spawn();
  }

  apply(filter: FilterName, input: Buffer, options?: ApplyOptions): Promise<FilterResult> {
    return this.run(chainOfFilter(filter), input, options);
  }

  run(chain: readonly Operation[], input: Buffer, { signal, maxPixels }: ApplyOptions = {}): Promise<FilterResult> {
    if (this.closed) return Promise.reject(new Error('jimp engine is closed'));
    if (this.broken) return Promise.reject(this.broken);
    if (signal?.aborted) return Promise.reject(signal.reason);
    let request: JimpRequest;
    let mime: OutputMime;
    try {
      const plan = planChain(chain, input, JIMP_CAPABILITIES, 'jimp', maxPixels);
      // jimp has no limit of its own: the header says the size before a pixel is allocated
      if (maxPixels !== undefined) checkPixels(plan.header, maxPixels);
      mime = plan.output.mime;
      // Always copy the input: transferring would detach the caller's buffer.
      request = {
        chain: [...chain],
        mime: plan.mime,
        orientation: plan.header.orientation,
        output: { format: plan.output.format, quality: plan.output.quality },
        data: new Uint8Array(input),
      };
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const abandon = (): void => this.abandon(job, signal?.reason);
      const done = (): void => signal?.removeEventListener('abort', abandon);
      const job: Job = {
        request,
        mime,
        resolve: (result) => {
          done();
          resolve(result);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      signal?.addEventListener('abort', abandon, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  /**
   * Gives up a job: a queued one leaves the queue; a running one's thread is terminated, which frees all its
   * memory (pixels, codec, heap), and a new thread takes its place.
   */
  private abandon(job: Job, reason: unknown): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    for (const [thread, running] of this.running) {
      if (running !== job) continue;
      this.running.delete(thread);
      this.retired.add(thread);
      void thread.terminate();
      if (!this.closed) this.spawn();
    }
    job.reject(reason);
    this.dispatch();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new Error('jimp engine is closed');
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const job of this.running.values()) job.reject(error);
    const threads = [...this.idle.splice(0), ...this.running.keys()];
    this.running.clear();
    await Promise.all(threads.map((thread) => thread.terminate()));
  }

  private spawn(): void {
    const thread = new Worker(this.threadScript);
    let crash: Error | undefined;
    thread.on('message', (response: JimpResponse) => this.settle(thread, response));
    thread.on('error', (err) => {
      crash = err;
    });
    thread.on('exit', (code) => {
      if (this.retired.delete(thread) || this.closed) return;
      const index = this.idle.indexOf(thread);
      if (index >= 0) this.idle.splice(index, 1);
      const job = this.running.get(thread);
      this.running.delete(thread);
      const error = new Error(`jimp thread died (exit code ${code})${crash ? `: ${crash.message}` : ''}`);
      if (job) {
        job.reject(error);
        this.spawn();
        this.dispatch();
      } else if (this.idle.length + this.running.size === 0) {
        // An idle thread runs no code, so it died while starting (e.g. its script failed to
        // load): respawning would loop forever, so the engine fails instead.
        this.broken = error;
        for (const queued of this.queue.splice(0)) queued.reject(error);
      }
    });
    this.idle.push(thread);
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const thread = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(thread, job);
      thread.postMessage(job.request, [job.request.data.buffer]);
    }
  }

  private settle(thread: Worker, response: JimpResponse): void {
    const job = this.running.get(thread);
    if (!job) return;
    this.running.delete(thread);
    this.idle.push(thread);
    if (response.ok) {
      const { data, width, height } = response;
      job.resolve({
        data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        mime: job.mime,
        width,
        height,
      });
    } else {
      job.reject(response.undecodable ? new UndecodableImageError(response.message) : new Error(response.message));
    }
    this.dispatch();
  }
}

export async function createJimpEngine(concurrency: number): Promise<FilterEngine> {
  return new JimpEngine(concurrency);
}
