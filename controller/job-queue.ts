import { MinHeap } from './min-heap.js';
import { OrderedIds } from './ordered-ids.js';
import type { Job, Store } from './store/index.js';
import { needsOf, type JobNeeds } from './workload-needs.js';

/** Whether some worker that may take work now can run jobs with these needs. */
export type Runnable = (needs: JobNeeds) => boolean;

/** The queued jobs of one kind of need, oldest upload first. */
interface Group {
  /** Null for jobs whose workload is unknown: no worker can run them. */
  needs: JobNeeds | null;
  /** Jobs that never left the queue, in upload order (a new job's original is always the newest). */
  fresh: Set<string>;
  /** Jobs back in the queue (declined, released, retried) once any backoff has passed, in upload order. */
  returned: OrderedIds;
  /** Its key, and how many workloads map to it: a group no workload maps to that holds no job goes. */
  key: string;
  workloads: number;
}

/** One group's jobs in upload order, the fresh and the returned merged; it resumes correctly as jobs leave. */
class GroupWalk {
  private readonly fresh: Iterator<string>;
  private nextFresh: string | undefined;
  private freshDone = false;
  private lastReturned = Number.NEGATIVE_INFINITY;
  private nextReturned: string | undefined;
  private returnedKnown = false;

  constructor(
    readonly group: Group,
    private readonly order: (jobId: string) => number,
  ) {
    this.fresh = group.fresh.values();
  }

  /** The next job's id and upload order, or undefined when the group has no more. */
  head(): { id: string; order: number } | undefined {
    if (this.nextFresh === undefined && !this.freshDone) {
      const step = this.fresh.next();
      if (step.done) this.freshDone = true;
      else this.nextFresh = step.value;
    }
    if (!this.returnedKnown) {
      this.nextReturned = this.group.returned.after(this.lastReturned);
      this.returnedKnown = true;
    }
    const fresh = this.nextFresh === undefined ? undefined : { id: this.nextFresh, order: this.order(this.nextFresh) };
    const back =
      this.nextReturned === undefined ? undefined : { id: this.nextReturned, order: this.order(this.nextReturned) };
    if (!back) return fresh;
    return fresh && fresh.order <= back.order ? fresh : back;
  }

  /** Moves past the job head() named. */
  take(id: string, order: number): void {
    if (id === this.nextFresh) {
      this.nextFresh = undefined;
    } else {
      this.lastReturned = order;
      this.returnedKnown = false;
    }
  }
}

/**
 * The queue of the job book: queued jobs grouped by what they need (their workload's filter and tags),
 * each group oldest upload first, and the jobs waiting out a retry backoff apart, earliest end first.
 * A placement pass asks once per group whether any candidate can run it and skips the whole group
 * otherwise, so jobs no worker can take cost nothing; jobs in backoff are not walked either.
 */
export class JobQueue {
  private readonly groups = new Map<string, Group>();
  private readonly groupOfWorkload = new Map<string, Group>();
  /** Jobs in backoff by the time it ends; an entry whose time is not the job's `waitingUntil` is stale. */
  private readonly waiting = new MinHeap();
  private readonly waitingUntil = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly order: (jobId: string) => number,
  ) {}

  /** Queued jobs at load, already in upload order. */
  load(queued: readonly Job[], now: number): void {
    for (const job of queued) {
      if (job.not_before > now) this.wait(job);
      else this.groupOf(job).fresh.add(job.id);
    }
  }

  /** A new job: the newest upload of all. */
  add(job: Job): void {
    this.groupOf(job).fresh.add(job.id);
  }

  /** A job back in the queue keeps its place in upload order, once its backoff (if any) has passed. */
  requeue(job: Job, now: number): void {
    if (job.not_before > now) this.wait(job);
    else this.groupOf(job).returned.add(job.id);
  }

  /** A job left the queue (assigned, or finished). */
  remove(job: Job): void {
    const group = this.groupOf(job);
    if (group.fresh.delete(job.id) || group.returned.delete(job.id)) return;
    this.waitingUntil.delete(job.id);
  }

  /** The workload is gone (none of its jobs is queued any more): its group is no longer remembered by it. */
  forgetWorkload(workloadId: string): void {
    const group = this.groupOfWorkload.get(workloadId);
    if (!group) return;
    this.groupOfWorkload.delete(workloadId);
    group.workloads -= 1;
    if (group.workloads <= 0 && group.fresh.size + group.returned.size === 0) this.groups.delete(group.key);
  }

  /**
   * Queued jobs whose backoff has passed, oldest upload first across the groups that `runnable`
   * accepts (every group, jobs of unknown workloads included, without it). The caller may assign as it
   * goes. `runnable` is asked once per group when the walk starts and again before each job the
   * group yields, and a group it refuses is left for the rest of the walk: the caller's free slots
   * only fall during a walk, so a group no candidate can take stays so.
   */
  *ready(now: number, runnable?: Runnable): Generator<Job> {
    this.wake(now);
    const accepts = (group: Group): boolean => !runnable || (group.needs !== null && runnable(group.needs));
    const walks: GroupWalk[] = [];
    for (const group of this.groups.values()) {
      if (group.fresh.size + group.returned.size > 0 && accepts(group)) walks.push(new GroupWalk(group, this.order));
    }
    for (;;) {
      let best: { walk: GroupWalk; id: string; order: number } | undefined;
      for (let index = walks.length - 1; index >= 0; index--) {
        const walk = walks[index]!;
        const head = walk.head();
        if (!head) walks.splice(index, 1);
        else if (!best || head.order <= best.order) best = { walk, ...head };
      }
      if (!best) return;
      if (!accepts(best.walk.group)) {
        walks.splice(walks.indexOf(best.walk), 1);
        continue;
      }
      best.walk.take(best.id, best.order);
      const job = this.store.data.jobs[best.id];
      if (job?.state === 'queued' && job.not_before <= now) yield job;
    }
  }

  /** The earliest time a queued job in backoff becomes ready, or null. */
  nextBackoffEnd(now: number): number | null {
    this.wake(now);
    for (let top = this.waiting.peek(); top; top = this.waiting.peek()) {
      if (this.waitingUntil.get(top.id) === top.at) return top.at;
      this.waiting.pop();
    }
    return null;
  }

  /** Jobs whose backoff has ended join their group's returned jobs. */
  private wake(now: number): void {
    for (let top = this.waiting.peek(); top && top.at <= now; top = this.waiting.peek()) {
      this.waiting.pop();
      if (this.waitingUntil.get(top.id) !== top.at) continue;
      this.waitingUntil.delete(top.id);
      const job = this.store.data.jobs[top.id];
      if (job?.state === 'queued') this.groupOf(job).returned.add(job.id);
    }
  }

  private wait(job: Job): void {
    this.waitingUntil.set(job.id, job.not_before);
    this.waiting.push(job.not_before, job.id);
  }

  private groupOf(job: Job): Group {
    const known = this.groupOfWorkload.get(job.workload_id);
    if (known) return known;
    const workload = this.store.data.workloads[job.workload_id];
    const needs = workload ? needsOf(workload) : null;
    // the same needs share a group (operations and tags come sorted: their order does not matter)
    const key = needs ? JSON.stringify(needs) : '';
    let group = this.groups.get(key);
    if (!group) {
      group = { needs, fresh: new Set(), returned: new OrderedIds(this.order), key, workloads: 0 };
      this.groups.set(key, group);
    }
    // a job of an unknown workload is not remembered by workload: the workload may yet appear
    if (workload) {
      this.groupOfWorkload.set(job.workload_id, group);
      group.workloads += 1;
    }
    return group;
  }
}
