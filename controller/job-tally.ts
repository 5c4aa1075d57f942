import { OrderedIds } from './ordered-ids.js';
import type { Job, JobState } from './store/index.js';

export type StateCounts = Record<JobState, number>;

export const JOB_STATES: readonly JobState[] = ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled'];

export function noJobs(): StateCounts {
  return { queued: 0, assigned: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
}

/** One workload's jobs as its views read them, without a walk over its originals. */
export interface WorkloadJobs {
  readonly counts: Readonly<StateCounts>;
  /** Ids of the done jobs, in upload order of their originals (a live view: copy it to keep it). */
  readonly done: readonly string[];
  /** Ids of the failed jobs, in upload order of their originals (a live view: copy it to keep it). */
  readonly failed: readonly string[];
  /** The latest change of any of its jobs (epoch ms; 0 when it has none): its last activity. */
  readonly lastChange: number;
}

/** What the tally tells; the job book alone changes it. */
export interface JobCounts {
  /** Jobs per state, over all workloads. */
  counts(): Readonly<StateCounts>;
  of(workloadId: string): WorkloadJobs;
}

interface Entry {
  counts: StateCounts;
  done: OrderedIds;
  failed: OrderedIds;
  lastChange: number;
}

const NONE: WorkloadJobs = Object.freeze({ counts: Object.freeze(noJobs()), done: [], failed: [], lastChange: 0 });

/**
 * Jobs per state, in all and per workload, and each workload's done and failed jobs in upload order:
 * counted once at load, then kept in step with every change of state (the job book reports each one),
 * so a scrape, a status or a workload view costs the same however many jobs have finished.
 */
export class JobTally implements JobCounts {
  private readonly total = noJobs();
  private readonly workloads = new Map<string, Entry>();

  /** `jobs` are counted in one pass, their done and failed lists sorted once. */
  constructor(
    private readonly order: (jobId: string) => number,
    jobs: Iterable<Job> = [],
  ) {
    const lists = new Map<string, { done: [number, string][]; failed: [number, string][] }>();
    for (const job of jobs) {
      this.total[job.state] += 1;
      const entry = this.entry(job.workload_id);
      entry.counts[job.state] += 1;
      entry.lastChange = Math.max(entry.lastChange, Date.parse(job.updated_at) || 0);
      if (job.state !== 'done' && job.state !== 'failed') continue;
      let list = lists.get(job.workload_id);
      if (!list) {
        list = { done: [], failed: [] };
        lists.set(job.workload_id, list);
      }
      list[job.state].push([order(job.id), job.id]);
    }
    const sorted = (pairs: [number, string][]): string[] => pairs.sort((a, b) => a[0] - b[0]).map(([, id]) => id);
    for (const [workloadId, list] of lists) {
      const entry = this.entry(workloadId);
      entry.done = new OrderedIds(order, sorted(list.done));
      entry.failed = new OrderedIds(order, sorted(list.failed));
    }
  }

  /** A job entered its current state from `from` (null: it is new). */
  moved(job: Job, from: JobState | null): void {
    const entry = this.entry(job.workload_id);
    if (from) {
      this.total[from] -= 1;
      entry.counts[from] -= 1;
      if (from === 'done' || from === 'failed') entry[from].delete(job.id);
    }
    this.total[job.state] += 1;
    entry.counts[job.state] += 1;
    if (job.state === 'done' || job.state === 'failed') entry[job.state].add(job.id);
    entry.lastChange = Math.max(entry.lastChange, Date.parse(job.updated_at) || 0);
  }

  /** The job is no longer counted in the state it was in (it was deleted, or a failed commit took it back). */
  forget(job: Job): void {
    const entry = this.entry(job.workload_id);
    this.total[job.state] -= 1;
    entry.counts[job.state] -= 1;
    if (job.state === 'done' || job.state === 'failed') entry[job.state].delete(job.id);
  }

  /**
   * The workload and every job of it are gone: its counts leave the totals and its entry goes, at once
   * (forgetting its jobs one by one would cost a search and a splice of its lists each).
   */
  drop(workloadId: string): void {
    const entry = this.workloads.get(workloadId);
    if (!entry) return;
    for (const state of JOB_STATES) this.total[state] -= entry.counts[state];
    this.workloads.delete(workloadId);
  }

  counts(): Readonly<StateCounts> {
    return this.total;
  }

  of(workloadId: string): WorkloadJobs {
    const entry = this.workloads.get(workloadId);
    return entry
      ? { counts: entry.counts, done: entry.done.values(), failed: entry.failed.values(), lastChange: entry.lastChange }
      : NONE;
  }

  private entry(workloadId: string): Entry {
    let entry = this.workloads.get(workloadId);
    if (!entry) {
      entry = { counts: noJobs(), done: new OrderedIds(this.order), failed: new OrderedIds(this.order), lastChange: 0 };
      this.workloads.set(workloadId, entry);
    }
    return entry;
  }
}
