import { resourceChart } from '../chart.js';
import { bytes, h, percent, replace } from '../dom.js';
import type { Worker } from '../types.js';

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function card(worker: Worker): HTMLElement {
  return h(
    'article',
    { class: `worker ${worker.state}`, 'data-testid': 'worker', 'data-name': worker.name },
    h('header', {}, h('strong', {}, worker.name), h('span', { class: `badge ${worker.state}` }, worker.state)),
    h(
      'div',
      { class: 'stats' },
      h('span', { title: 'CPU load' }, h('i', { class: 'dot cpu' }), `CPU ${Math.round(worker.cpu_load)}%`),
      h(
        'span',
        { title: `memory in use of ${bytes(worker.mem_total)}` },
        h('i', { class: 'dot mem' }),
        `mem ${percent(worker.mem_used)}`,
      ),
      h(
        'span',
        { title: `jobs running / slots; up to ${worker.prefetch} more may wait on the worker for a slot (--prefetch)` },
        jobsText(worker),
      ),
    ),
    resourceChart(worker.history),
    h(
      'footer',
      { class: 'muted' },
      `${worker.engine} · ${worker.cores} cores · ${gpuText(worker.gpu)}`,
      ...worker.tags.map((tag) => h('span', { class: 'tag' }, tag)),
    ),
  );
}

export function renderWorkers(container: HTMLElement, workers: Worker[]): void {
  const alive = workers.filter((worker) => worker.state === 'alive');
  replace(
    container,
    h(
      'h2',
      {},
      'Workers ',
      h(
        'span',
        { class: 'muted' },
        `${alive.length} alive · ${plural(
          alive.reduce((sum, worker) => sum + worker.free_slots, 0),
          'free slot',
        )}`,
      ),
    ),
    workers.length === 0 ? h('p', { class: 'muted' }, 'No worker has registered yet.') : null,
    ...workers.map(card),
  );
}

function gpuText(gpu: Worker['gpu']): string {
  if (!gpu.present) return 'no GPU';
  const memory = gpu.memory_total_mb
    ? ` (${Math.round(gpu.memory_free_mb ?? gpu.memory_total_mb)} of ${Math.round(gpu.memory_total_mb)} MB free)`
    : '';
  return `GPU ${gpu.model ?? ''}${memory}`.trim();
}

/** "1/2 jobs", and the jobs held beyond the slots, which wait on the worker: "2/2 jobs, 1 waiting". */
function jobsText(worker: Pick<Worker, 'running_jobs' | 'slots'>): string {
  const waiting = Math.max(0, worker.running_jobs - worker.slots);
  const running = worker.running_jobs - waiting;
  return `${running}/${worker.slots} jobs${waiting > 0 ? `, ${waiting} waiting` : ''}`;
}
