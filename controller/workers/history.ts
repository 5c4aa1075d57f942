import type { Resources } from '../../common/protocol.js';
import { own, workerHistoryKey, type Store, type WorkerMinute, type WorkerSample } from '../store/index.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
/** Every heartbeat's sample is kept this long; then one point per minute (the minute's mean). */
export const FULL_RESOLUTION_MS = HOUR_MS;
/** Points older than this are gone. */
export const KEPT_MS = 7 * 24 * HOUR_MS;
/**
 * Samples closer together than this are one: a worker that heartbeats faster (or a client that calls
 * `heartbeat` in a loop) adds nothing, and a minute's record holds at most 240 samples.
 */
export const MIN_SAMPLE_GAP_MS = 250;
/** The samples GET /workers lists per worker. */
export const RECENT_SAMPLES = 300;

const minuteOf = (t: number): number => t - (t % MINUTE_MS);
const hourOf = (t: number): number => t - (t % HOUR_MS);
const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** The share of a machine's memory in use, 0..1 (0 when its total is unknown). */
export function memoryUsed(resources: Pick<Resources, 'mem_free' | 'mem_total'>): number {
  return resources.mem_total > 0 ? Math.min(1, Math.max(0, 1 - resources.mem_free / resources.mem_total)) : 0;
}

/** A heartbeat's report as one sample of the history, rounded to what a chart shows. */
export function sampleOf(resources: Resources, t: number): WorkerSample {
  const sample: WorkerSample = {
    t,
    cpu_load: round(Math.min(100, Math.max(0, resources.cpu_load)), 1),
    mem_used: round(memoryUsed(resources), 4),
  };
  const { gpu } = resources;
  if (gpu.present && gpu.utilization !== undefined) sample.gpu_utilization = round(gpu.utilization, 1);
  if (gpu.present && gpu.memory_free_mb !== undefined) sample.gpu_memory_free_mb = Math.round(gpu.memory_free_mb);
  return sample;
}

function mean(values: number[], digits: number): number | undefined {
  return values.length === 0 ? undefined : round(values.reduce((sum, value) => sum + value, 0) / values.length, digits);
}

/** A minute's samples as one point at the minute's start: the mean of each reading (GPU readings where reported). */
export function minutePoint(start: number, samples: readonly WorkerSample[]): WorkerSample {
  const point: WorkerSample = {
    t: start,
    cpu_load: mean(
      samples.map((sample) => sample.cpu_load),
      1,
    )!,
    mem_used: mean(
      samples.map((sample) => sample.mem_used),
      4,
    )!,
  };
  const utilization = mean(
    samples.flatMap((sample) => (sample.gpu_utilization === undefined ? [] : [sample.gpu_utilization])),
    1,
  );
  const gpuFree = mean(
    samples.flatMap((sample) => (sample.gpu_memory_free_mb === undefined ? [] : [sample.gpu_memory_free_mb])),
    0,
  );
  if (utilization !== undefined) point.gpu_utilization = utilization;
  if (gpuFree !== undefined) point.gpu_memory_free_mb = gpuFree;
  return point;
}

/** What is stored of one worker: the starts of its minute records and of its hour records. */
interface Timeline {
  minutes: Set<number>;
  hours: Set<number>;
}

/** A worker's history as the detail view shows it. */
export interface FullHistory {
  /** The last hour, every sample, oldest first. */
  samples: WorkerSample[];
  /** The week before it, one point per minute, oldest first. */
  minutes: WorkerSample[];
}

/**
 * Each worker's resource history, kept in the datastore at a cost per heartbeat that does not grow:
 * - a heartbeat's sample joins the worker's current minute, in memory;
 * - a minute is written once, whole, when it is over (the next heartbeat, or `tick` for a silent worker,
 *   or `flush` when the server closes): one record a minute per worker (`worker_minutes`);
 * - once the hour after a minute's own hour is over (its samples are then 1-2 h old), the minutes of that
 *   hour are folded into one record of one point per minute (`worker_hours`), written once;
 * - an hour record older than a week is deleted.
 * So the last hour is always there at heartbeat resolution, and the week before it at one point per minute.
 * Records are only ever written whole and once (a minute record twice when a server closed within its
 * minute and the worker came back in it): nothing is rewritten as it grows.
 */
export class WorkerHistory {
  /** Each worker's minute in progress: not in the store until it is over. */
  private readonly open = new Map<string, WorkerMinute>();
  private timelines: Map<string, Timeline>;
  private lastFold = Number.NEGATIVE_INFINITY;

  constructor(private readonly store: Store) {
    this.timelines = this.index();
    store.onRollback((restored) => {
      if (restored.has('worker_minutes') || restored.has('worker_hours')) this.timelines = this.index();
      // a worker whose registration did not commit has no history
      for (const id of restored.get('workers') ?? []) if (!own(store.data.workers, id)) this.open.delete(id);
    });
  }

  /** A heartbeat's (or registration's) report. */
  record(workerId: string, resources: Resources, now: number): void {
    const start = minuteOf(now);
    let minute = this.open.get(workerId);
    if (minute && minute.start !== start) {
      // the clock went back: that minute is written already
      if (start < minute.start) return;
      this.close(minute);
      minute = undefined;
    }
    if (!minute) {
      // a minute written when the server closed, its worker back within it: it goes on
      const kept = own(this.store.data.worker_minutes, workerHistoryKey(workerId, start));
      minute = { worker_id: workerId, start, samples: kept ? [...kept.samples] : [] };
      this.open.set(workerId, minute);
    }
    const last = minute.samples.at(-1);
    if (last && now - last.t < MIN_SAMPLE_GAP_MS) return;
    minute.samples.push(sampleOf(resources, now));
  }

  /**
   * Writes the minutes that are over, and (once a minute) folds the hours whose full resolution is no
   * longer kept and deletes what is older than a week. True when it changed the store: commit.
   */
  tick(now: number): boolean {
    let changed = false;
    for (const minute of [...this.open.values()]) {
      if (minute.start + MINUTE_MS <= now) {
        this.close(minute);
        changed = true;
      }
    }
    if (now - this.lastFold < MINUTE_MS) return changed;
    this.lastFold = now;
    for (const [workerId, timeline] of this.timelines) {
      changed = this.fold(workerId, timeline, now) || changed;
      changed = this.prune(workerId, timeline, now) || changed;
      if (timeline.minutes.size === 0 && timeline.hours.size === 0) this.timelines.delete(workerId);
    }
    return changed;
  }

  /** Writes every minute in progress, however short (the server is closing). */
  flush(): boolean {
    const minutes = [...this.open.values()];
    for (const minute of minutes) this.close(minute);
    return minutes.length > 0;
  }

  /** The newest `limit` samples of the last hour, oldest first. */
  recent(workerId: string, limit: number, now: number): WorkerSample[] {
    const newestFirst: WorkerSample[][] = [];
    let count = 0;
    const open = this.open.get(workerId);
    if (open) {
      newestFirst.push(open.samples);
      count += open.samples.length;
    }
    const oldest = minuteOf(now) - FULL_RESOLUTION_MS + MINUTE_MS;
    for (
      let start = open ? open.start - MINUTE_MS : minuteOf(now);
      count < limit && start >= oldest;
      start -= MINUTE_MS
    ) {
      const minute = own(this.store.data.worker_minutes, workerHistoryKey(workerId, start));
      if (!minute) continue;
      newestFirst.push(minute.samples);
      count += minute.samples.length;
    }
    const samples = newestFirst.reverse().flat();
    return samples.length > limit ? samples.slice(samples.length - limit) : samples;
  }

  /** The last hour at heartbeat resolution, and the week before it at one point per minute. */
  full(workerId: string, now: number): FullHistory {
    const cutoff = minuteOf(now) - FULL_RESOLUTION_MS + MINUTE_MS;
    const samples = this.recent(workerId, Number.POSITIVE_INFINITY, now);
    const minutes: WorkerSample[] = [];
    const since = now - KEPT_MS;
    for (let start = hourOf(since); start < cutoff; start += HOUR_MS) {
      const hour = own(this.store.data.worker_hours, workerHistoryKey(workerId, start));
      for (const point of hour?.points ?? []) if (point.t >= since && point.t < cutoff) minutes.push(point);
    }
    for (const start of this.timelines.get(workerId)?.minutes ?? []) {
      const minute = own(this.store.data.worker_minutes, workerHistoryKey(workerId, start));
      if (minute && start < cutoff && start >= since && minute.samples.length > 0)
        minutes.push(minutePoint(start, minute.samples));
    }
    return { samples, minutes: minutes.sort((a, b) => a.t - b.t) };
  }

  private close(minute: WorkerMinute): void {
    this.open.delete(minute.worker_id);
    if (minute.samples.length === 0) return;
    const key = workerHistoryKey(minute.worker_id, minute.start);
    this.store.change('worker_minutes', key);
    this.store.data.worker_minutes[key] = minute;
    this.timeline(minute.worker_id).minutes.add(minute.start);
  }

  /** Folds every hour of the worker's minutes that is no longer kept at full resolution into its hour record. */
  private fold(workerId: string, timeline: Timeline, now: number): boolean {
    const hours = new Map<number, number[]>();
    for (const start of timeline.minutes) {
      const hour = hourOf(start);
      if (hour + HOUR_MS + FULL_RESOLUTION_MS > now) continue;
      const starts = hours.get(hour);
      if (starts) starts.push(start);
      else hours.set(hour, [start]);
    }
    const { data } = this.store;
    for (const [hour, starts] of hours) {
      const key = workerHistoryKey(workerId, hour);
      const points = new Map((own(data.worker_hours, key)?.points ?? []).map((point) => [point.t, point]));
      for (const start of starts) {
        const minuteKey = workerHistoryKey(workerId, start);
        const minute = own(data.worker_minutes, minuteKey);
        if (minute && minute.samples.length > 0) points.set(start, minutePoint(start, minute.samples));
        this.store.change('worker_minutes', minuteKey);
        delete data.worker_minutes[minuteKey];
        timeline.minutes.delete(start);
      }
      this.store.change('worker_hours', key);
      data.worker_hours[key] = {
        worker_id: workerId,
        start: hour,
        points: [...points.values()].sort((a, b) => a.t - b.t),
      };
      timeline.hours.add(hour);
    }
    return hours.size > 0;
  }

  /** Deletes the worker's hour records whose every point is older than a week. */
  private prune(workerId: string, timeline: Timeline, now: number): boolean {
    let changed = false;
    for (const start of timeline.hours) {
      if (start + HOUR_MS > now - KEPT_MS) continue;
      const key = workerHistoryKey(workerId, start);
      this.store.change('worker_hours', key);
      delete this.store.data.worker_hours[key];
      timeline.hours.delete(start);
      changed = true;
    }
    return changed;
  }

  private timeline(workerId: string): Timeline {
    return timelineOf(this.timelines, workerId);
  }

  /** What the store holds, per worker: built once at start (and after a rollback), then kept as records change. */
  private index(): Map<string, Timeline> {
    const timelines = new Map<string, Timeline>();
    for (const minute of Object.values(this.store.data.worker_minutes))
      timelineOf(timelines, minute.worker_id).minutes.add(minute.start);
    for (const hour of Object.values(this.store.data.worker_hours))
      timelineOf(timelines, hour.worker_id).hours.add(hour.start);
    return timelines;
  }
}

function timelineOf(timelines: Map<string, Timeline>, workerId: string): Timeline {
  let timeline = timelines.get(workerId);
  if (!timeline) {
    timeline = { minutes: new Set(), hours: new Set() };
    timelines.set(workerId, timeline);
  }
  return timeline;
}
