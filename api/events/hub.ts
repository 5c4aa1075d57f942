import type { Response } from 'express';
import { AppError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { viewWorkload, type Controller, type JobChange } from '../../controller/index.js';
import { workerViews } from '../views.js';

export interface EventTimings {
  /** How often every stream gets a snapshot of the workers (ms). */
  workersMs: number;
  /** How often an otherwise quiet stream gets a comment line, so proxies and clients know it is alive (ms). */
  heartbeatMs: number;
  /** Changes to a workload within this window leave as one event (ms). */
  coalesceMs: number;
  /** Resource samples per worker in each snapshot (GET /workers has them all). */
  historySamples: number;
}

export const DEFAULT_EVENT_TIMINGS: EventTimings = {
  workersMs: 1000,
  heartbeatMs: 15_000,
  coalesceMs: 100,
  historySamples: 120,
};

/** One open Server-Sent Events stream: a user's browser tab. */
interface Stream {
  user: string;
  token: string;
  res: Response;
  /** The user's workloads that changed since the last flush. */
  pending: Set<string>;
}

/**
 * The Server-Sent Events of the API. One listener on the controller's job events and one timer serve
 * every open stream (the timer runs only while a stream is open); each stream gets the changes of its
 * user's own workloads, worker snapshots, and heartbeats. A stream whose token is revoked or expires is
 * ended with a `logout` event.
 */
export class EventHub {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onJob = (change: JobChange): void => this.jobChanged(change);

  constructor(
    private readonly controller: Controller,
    private readonly log: Logger,
    private readonly timings: EventTimings = DEFAULT_EVENT_TIMINGS,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** Takes over the response: headers, the first events, and the cleanup when the client goes away. */
  open(res: Response, user: string, token: string): void {
    if (this.closed) throw new AppError('unavailable', 'the server is shutting down');
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    res.socket?.setNoDelay(true);
    const stream: Stream = { user, token, res, pending: new Set() };
    if (this.streams.size === 0) this.start();
    this.streams.add(stream);
    res.on('close', () => this.drop(stream));
    // the client reconnects after 2 s if the connection drops
    this.write(stream, `retry: 2000\n${event('hello', { user, server_time: new Date().toISOString() })}`);
    this.write(stream, event('workers', { workers: workerViews(this.controller, this.timings.historySamples) }));
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    this.closed = true;
    for (const stream of [...this.streams]) stream.res.end();
    this.streams.clear();
    this.stop();
  }

  private start(): void {
    this.controller.events.on('job', this.onJob);
    this.timer = setInterval(() => this.tick(), this.timings.workersMs);
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) this.write(stream, ': heartbeat\n\n');
    }, this.timings.heartbeatMs);
  }

  private stop(): void {
    this.controller.events.off('job', this.onJob);
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.timer = null;
    this.heartbeat = null;
    this.flushTimer = null;
  }

  private drop(stream: Stream): void {
    if (!this.streams.delete(stream)) return;
    if (this.streams.size === 0) this.stop();
  }

  private jobChanged({ job }: JobChange): void {
    const owner = this.controller.store.data.workloads[job.workload_id]?.owner;
    let any = false;
    for (const stream of this.streams) {
      if (stream.user !== owner) continue;
      stream.pending.add(job.workload_id);
      any = true;
    }
    if (any && !this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.timings.coalesceMs);
  }

  private flush(): void {
    this.flushTimer = null;
    const views = new Map<string, string>();
    for (const stream of this.streams) {
      for (const id of stream.pending) {
        const workload = this.controller.store.data.workloads[id];
        if (!workload) continue;
        let text = views.get(id);
        if (text === undefined) {
          text = event('workload', viewWorkload(this.controller, workload));
          views.set(id, text);
        }
        this.write(stream, text);
      }
      stream.pending.clear();
    }
  }

  private tick(): void {
    const snapshot = event('workers', { workers: workerViews(this.controller, this.timings.historySamples) });
    for (const stream of [...this.streams]) {
      if (!this.controller.tokens.verify(stream.token)) {
        this.write(stream, event('logout', { reason: 'the token expired or was revoked: log in again' }));
        stream.res.end();
        this.drop(stream);
        continue;
      }
      this.write(stream, snapshot);
    }
  }

  private write(stream: Stream, text: string): void {
    if (stream.res.writableEnded || stream.res.destroyed) return;
    // a client that stops reading while the socket buffer fills is not waited for: it is cut off
    if (!stream.res.write(text) && stream.res.writableLength > 4 * 1024 * 1024) {
      this.log.warn({ user: stream.user }, 'event stream client is not reading: closed');
      stream.res.destroy();
    }
  }
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
