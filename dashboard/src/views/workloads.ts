import { ApiError, type Api } from '../api.js';
import { h, replace } from '../dom.js';
import type { Workload } from '../types.js';
import { progressBar, statusBadge } from './progress.js';

/** The form that creates a workload, then opens it. */
export function createForm(api: Api, onCreated: (workload: Workload) => void): HTMLElement {
  const name = h('input', {
    name: 'workload_name',
    placeholder: 'holiday-2026',
    pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}',
    'data-testid': 'workload-name',
  });
  const filter = h(
    'select',
    { name: 'filter', 'data-testid': 'workload-filter' },
    h('option', { value: 'grayscale' }, 'grayscale'),
    h('option', { value: 'blur' }, 'blur'),
  );
  const tags = h('input', { name: 'tags', placeholder: 'optional, comma-separated', 'data-testid': 'workload-tags' });
  const message = h('p', { class: 'message hidden', role: 'alert' });
  const form = h(
    'form',
    {
      class: 'card create',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        message.className = 'message hidden';
        try {
          const workload = await api.createWorkload({
            workload_name: name.value.trim() || undefined,
            filter: filter.value,
            tags: tags.value
              .split(',')
              .map((tag) => tag.trim())
              .filter(Boolean),
          });
          form.reset();
          onCreated(workload);
        } catch (error) {
          message.textContent = error instanceof ApiError ? error.message : String(error);
          message.className = 'message';
        }
      },
    },
    h('h2', {}, 'New workload'),
    h(
      'div',
      { class: 'fields' },
      h('label', {}, 'Name', name),
      h('label', {}, 'Filter', filter),
      h('label', {}, 'Tags', tags),
    ),
    message,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-workload' }, 'Create'),
  );
  return form;
}

export function renderWorkloadList(container: HTMLElement, workloads: Workload[]): void {
  replace(
    container,
    h('h2', {}, 'Your workloads'),
    workloads.length === 0 ? h('p', { class: 'muted' }, 'None yet: create one, then drop images into it.') : null,
    h(
      'ul',
      { class: 'workloads' },
      ...workloads.map((workload) =>
        h(
          'li',
          {},
          h(
            'a',
            {
              href: `#/workloads/${workload.workload_id}`,
              class: 'card workload',
              'data-testid': 'workload-link',
              'data-id': workload.workload_id,
            },
            h('header', {}, h('strong', {}, workload.workload_name), statusBadge(workload)),
            h(
              'div',
              { class: 'muted' },
              `${workload.filter}${workload.tags.length ? ` · ${workload.tags.join(', ')}` : ''} · ` +
                `${new Date(workload.created_at).toLocaleString()}`,
            ),
            progressBar(workload),
          ),
        ),
      ),
    ),
  );
}
