import type { Response } from 'express';
import { AppError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { formatSize } from '../../common/units.js';
import {
  viewWorkload,
  type Controller,
  type JobChange,
  type TokenRef,
  type WorkloadEvent,
} from '../../controller/index.js';
import { TooManyRequests } from '../errors.js';
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

/** How many streams may be open, and how much a stream may have waiting in its socket's buffer. */
export interface StreamLimits {
  /** Open streams, all users together (`--max-streams`); the next GET /events is 429. */
  maxStreams: number;
  /** Open streams of one user (`--max-streams-per-user`); the user's next GET /events is 429. */
  maxStreamsPerUser: number;
  /**
   * Bytes a stream may have waiting to be sent (its response's writableLength, what the kernel has not
   * taken): past this the client is not reading, and the stream is closed. EventSource reconnects and
   * gets a fresh, whole view, so nothing is lost by dropping what was waiting.
   */
  maxBufferedBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxStreams: 1000,
  maxStreamsPerUser: 8,
  maxBufferedBytes: 256 * 1024,
};

/** What a client refused for too many open streams is told to wait before it tries again (seconds). */
const STREAMS_RETRY_AFTER_S = 10;

/** One open Server-Sent Events stream: a user's browser tab. */
interface Stream {
  user: string;
  /** The user token the stream was opened with, or under which its URL token was issued. */
  session: TokenRef;
  res: Response;
  /** The user's workloads that changed since the last flush. */
  pending: Set<string>;
}

/**
 * The Server-Sent Events of the API. One listener on the controller's job events and one timer serve
 * every open stream (the timer runs only while a stream is open); each stream gets the changes of its
 * user's own workloads, worker snapshots, and heartbeats. A stream whose session (the user token) is
 * revoked or expires is ended with a `logout` event.
 */
export class EventHub {
  private readonly streams = new Set<Stream>();
  /** Open streams per user. */
  private readonly perUser = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onJob = (change: JobChange): void => this.jobChanged(change);
  private readonly onWorkload = (change: WorkloadEvent): void => this.workloadChanged(change);

  constructor(
    private readonly controller: Controller,
    private readonly log: Logger,
    private readonly timings: EventTimings = DEFAULT_EVENT_TIMINGS,
    private readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /**
   * Takes over the response: headers, the first events, and the cleanup when the client goes away. The
   * stream lasts as long as `session` (a user token) is neither expired nor revoked. Past the caps on
   * open streams (per user, and in all) it throws a 429 instead.
   */
  open(res: Response, user: string, session: TokenRef): void {
    if (this.closed) throw new AppError('unavailable', 'the server is shutting down');
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.limits.maxStreamsPerUser)
      throw new TooManyRequests(
        `you have ${mine} event streams open, the most one user may have (--max-streams-per-user ` +
          `${this.limits.maxStreamsPerUser}): close a tab or another client, then try again`,
        STREAMS_RETRY_AFTER_S,
      );
    if (this.streams.size >= this.limits.maxStreams)
      throw new TooManyRequests(
        `the server has ${this.streams.size} event streams open, the most it serves (--max-streams ` +
          `${this.limits.maxStreams}): try again later`,
        STREAMS_RETRY_AFTER_S,
      );
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    res.socket?.setNoDelay(true);
    const stream: Stream = { user, session: { jti: session.jti, exp: session.exp }, res, pending: new Set() };
    if (this.streams.size === 0) this.start();
    this.streams.add(stream);
    this.perUser.set(user, mine + 1);
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
    this.perUser.clear();
    this.stop();
  }

  private start(): void {
    this.controller.events.on('job', this.onJob);
    this.controller.events.on('workload', this.onWorkload);
    this.timer = setInterval(() => this.tick(), this.timings.workersMs);
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) this.write(stream, ': heartbeat\n\n');
    }, this.timings.heartbeatMs);
  }

  private stop(): void {
    this.controller.events.off('job', this.onJob);
    this.controller.events.off('workload', this.onWorkload);
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.timer = null;
    this.heartbeat = null;
    this.flushTimer = null;
  }

  private drop(stream: Stream): void {
    if (!this.streams.delete(stream)) return;
    const left = (this.perUser.get(stream.user) ?? 1) - 1;
    if (left > 0) this.perUser.set(stream.user, left);
    else this.perUser.delete(stream.user);
    if (this.streams.size === 0) this.stop();
  }

  private jobChanged({ job }: JobChange): void {
    const owner = this.controller.store.data.workloads[job.workload_id]?.owner;
    if (owner) this.changed(owner, job.workload_id);
  }

  /** A workload made, cancelled, or deleted: a deletion is told at once, as `workload_deleted`. */
  private workloadChanged({ kind, workload_id, owner }: WorkloadEvent): void {
    if (kind !== 'deleted') {
      this.changed(owner, workload_id);
      return;
    }
    const text = event('workload_deleted', { workload_id });
    for (const stream of [...this.streams]) {
      if (stream.user !== owner) continue;
      stream.pending.delete(workload_id);
      this.write(stream, text);
    }
  }

  private changed(owner: string, workloadId: string): void {
    let any = false;
    for (const stream of this.streams) {
      if (stream.user !== owner) continue;
      stream.pending.add(workloadId);
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
      if (!this.controller.tokens.isLive(stream.session)) {
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
    stream.res.write(text);
    // a client that stops reading is not waited for: once more than a little waits for the kernel to
    // take it, the stream is cut off (its EventSource reconnects and gets a fresh, whole view)
    const waiting = stream.res.writableLength;
    if (waiting > this.limits.maxBufferedBytes) {
      this.log.warn(
        { user: stream.user, waiting_bytes: waiting },
        `event stream client is not reading (over ${formatSize(this.limits.maxBufferedBytes)} waiting): closed`,
      );
      stream.res.destroy();
      this.drop(stream);
    }
  }
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
