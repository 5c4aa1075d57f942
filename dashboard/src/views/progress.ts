import { h } from '../dom.js';
import type { Workload } from '../types.js';

/** A bar in four parts, done / failed / running / queued, with the counts beside it. */
export function progressBar(workload: Workload): HTMLElement {
  const total = Math.max(1, workload.total_images);
  const part = (kind: string, count: number): HTMLElement =>
    h('span', { class: `part ${kind}`, style: `width:${(count / total) * 100}%`, title: `${count} ${kind}` });
  const done = workload.done_jobs;
  const failed = workload.failed_jobs;
  const running = workload.running_jobs;
  const queued = workload.queued_jobs;
  return h(
    'div',
    { class: 'progress', 'data-testid': 'progress', 'data-done': done, 'data-total': workload.total_images },
    h(
      'div',
      { class: 'bar' },
      part('done', done),
      part('failed', failed),
      part('running', running),
      part('queued', queued),
    ),
    h(
      'div',
      { class: 'counts' },
      h('span', { class: 'dot done' }),
      `${done} done`,
      failed > 0 ? h('span', { class: 'dot failed' }) : null,
      failed > 0 ? `${failed} failed` : null,
      running > 0 ? h('span', { class: 'dot running' }) : null,
      running > 0 ? `${running} running` : null,
      queued > 0 ? h('span', { class: 'dot queued' }) : null,
      queued > 0 ? `${queued} queued` : null,
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
