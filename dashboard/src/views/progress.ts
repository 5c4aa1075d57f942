import { h } from '../dom.js';
import type { Workload } from '../types.js';

/** A bar in five parts, done / failed / cancelled / running / queued, with the counts beside it. */
export function progressBar(workload: Workload): HTMLElement {
  const total = Math.max(1, workload.total_images);
  const counts: [string, number][] = [
    ['done', workload.done_jobs],
    ['failed', workload.failed_jobs],
    ['cancelled', workload.cancelled_jobs],
    ['running', workload.running_jobs],
    ['queued', workload.queued_jobs],
  ];
  return h(
    'div',
    {
      class: 'progress',
      'data-testid': 'progress',
      'data-done': workload.done_jobs,
      'data-cancelled': workload.cancelled_jobs,
      'data-total': workload.total_images,
    },
    h(
      'div',
      { class: 'bar' },
      ...counts.map(([kind, count]) =>
        h('span', { class: `part ${kind}`, style: `width:${(count / total) * 100}%`, title: `${count} ${kind}` }),
      ),
    ),
    h(
      'div',
      { class: 'counts' },
      // done always, the others when there are some
      ...counts.flatMap(([kind, count]) =>
        kind === 'done' || count > 0 ? [h('span', { class: `dot ${kind}` }), `${count} ${kind}`] : [],
      ),
      h('span', { class: 'muted' }, `of ${workload.total_images}`),
    ),
  );
}

export function statusBadge(workload: Workload): HTMLElement {
  const failed = workload.status === 'completed' && workload.failed_jobs > 0;
  return h(
    'span',
    { class: `badge ${failed ? 'failed' : workload.status}`, 'data-testid': 'status' },
    failed ? 'completed with failures' : workload.status,
  );
}

/**
 * Why its queued images wait (no live worker can run them), when it was cancelled, and when the server
 * deletes it (only a server with `--retention` says).
 */
export function lifecycleNotes(workload: Workload): HTMLElement[] {
  const notes: HTMLElement[] = [];
  if (workload.waiting_for)
    notes.push(
      h(
        'span',
        {
          class: 'note waiting',
          'data-testid': 'waiting-for',
          title: 'Its queued images wait until a worker that can run them is live',
        },
        `waiting: ${workload.waiting_for}`,
      ),
    );
  if (workload.cancelled_at)
    notes.push(
      h(
        'span',
        { class: 'note cancelled', 'data-testid': 'cancelled-at' },
        `cancelled ${new Date(workload.cancelled_at).toLocaleString()}`,
      ),
    );
  if (workload.expires_at)
    notes.push(
      h(
        'span',
        {
          class: 'note expires',
          'data-testid': 'expires',
          'data-expires': workload.expires_at,
          title: 'The server deletes finished workloads that stay idle this long, with their images',
        },
        `deleted automatically ${new Date(workload.expires_at).toLocaleString()}`,
      ),
    );
  return notes;
}
