import type { Api } from '../api.js';
import { h, replace } from '../dom.js';
import type { Workload } from '../types.js';
import type { WorkloadActions } from './actions.js';
import { ChainBuilder } from './chain-builder.js';
import { processing } from './chain.js';
import { lifecycleNotes, progressBar, statusBadge } from './progress.js';

/** The value of the filter menu that builds a chain of operations instead. */
const CHAIN = 'chain';

/**
 * The form that creates a workload, then opens it: a course filter, or a chain of operations built step by
 * step from what the server lists (GET /operations). What the server refuses is shown as it says it.
 */
export function createForm(api: Api, onCreated: (workload: Workload) => void): HTMLElement {
  const name = h('input', {
    name: 'workload_name',
    placeholder: 'holiday-2026',
    pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}',
    'data-testid': 'workload-name',
  });
  const filter = h(
    'select',
    { name: 'filter', 'data-testid': 'workload-filter', onchange: () => showChain() },
    h('option', { value: 'grayscale' }, 'grayscale'),
    h('option', { value: 'blur' }, 'blur'),
    h('option', { value: CHAIN }, 'chain of operations…'),
  );
  const tags = h('input', { name: 'tags', placeholder: 'optional, comma-separated', 'data-testid': 'workload-tags' });
  const message = h('p', { class: 'message hidden', role: 'alert', 'data-testid': 'create-message' });
  const chainArea = h('div', { class: 'chain-area hidden' });
  let builder: ChainBuilder | null = null;

  const say = (text: string): void => {
    message.textContent = text;
    message.className = text ? 'message' : 'message hidden';
  };
  // the operations are asked for once the chain is chosen, and again if that failed
  const showChain = (): void => {
    const chosen = filter.value === CHAIN;
    chainArea.classList.toggle('hidden', !chosen);
    if (!chosen || builder) return;
    replace(chainArea, h('p', { class: 'muted' }, 'Loading the operations…'));
    api.operations().then(
      (catalogue) => {
        builder ??= new ChainBuilder(catalogue);
        replace(chainArea, builder.element);
      },
      (error: unknown) =>
        replace(
          chainArea,
          h('p', { class: 'message' }, `The operations could not be loaded: ${errorText(error)}`),
          h('button', { type: 'button', class: 'small', onclick: showChain }, 'Try again'),
        ),
    );
  };

  const form = h(
    'form',
    {
      class: 'card create',
      // the server checks every field, and its message names what is wrong (the step of a chain)
      novalidate: true,
      onsubmit: async (event: Event) => {
        event.preventDefault();
        say('');
        builder?.showRefusal(null);
        const chain = filter.value === CHAIN;
        try {
          if (chain && !builder) throw new Error('the operations are not loaded yet');
          const what = chain && builder ? { operations: builder.chain() } : { filter: filter.value };
          const workload = await api.createWorkload({
            workload_name: name.value.trim() || undefined,
            tags: tags.value
              .split(',')
              .map((tag) => tag.trim())
              .filter(Boolean),
            ...what,
          });
          form.reset();
          builder?.reset();
          showChain();
          onCreated(workload);
        } catch (error) {
          say(errorText(error));
          if (chain) builder?.showRefusal(errorText(error));
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
    chainArea,
    message,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-workload' }, 'Create'),
  );
  return form;
}

/** An error for the user: the API's message (an ApiError), or what went wrong here. */
function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What the list shows: the loaded workloads, newest first, and whether older ones are left to load. */
export interface ListState {
  workloads: Workload[];
  more: boolean;
  loadingMore: boolean;
}

interface Item {
  element: HTMLElement;
  link: HTMLElement;
  actions: HTMLElement;
  /** What the link shows now. */
  key: string;
}

/** What a list item shows of a workload (its view also lists every result, which the item does not). */
function itemKey(workload: Workload): string {
  return JSON.stringify([
    workload.status,
    workload.total_images,
    workload.done_jobs,
    workload.failed_jobs,
    workload.cancelled_jobs,
    workload.running_jobs,
    workload.queued_jobs,
    workload.cancelled_at,
    workload.expires_at,
    workload.waiting_for,
  ]);
}

function itemContent(workload: Workload): HTMLElement[] {
  return [
    h('header', {}, h('strong', {}, workload.workload_name), statusBadge(workload)),
    h(
      'div',
      { class: 'muted meta' },
      processing(workload),
      `${workload.tags.length ? ` · ${workload.tags.join(', ')}` : ''} · ` +
        `${new Date(workload.created_at).toLocaleString()}`,
      ...lifecycleNotes(workload),
    ),
    progressBar(workload),
  ];
}

/**
 * "Your workloads": one item per workload, each a link to its page beside its Cancel and Delete buttons,
 * and a button that loads older ones. Drawn again on every live update, it changes only the items whose
 * workload changed, and leaves the buttons alone unless what they offer changed.
 */
export class WorkloadList {
  readonly element: HTMLElement;
  private readonly list = h('ul', { class: 'workloads', 'data-testid': 'workload-list' });
  private readonly empty = h('p', { class: 'muted' }, 'None yet: create one, then drop images into it.');
  private readonly more: HTMLButtonElement;
  private readonly items = new Map<string, Item>();

  constructor(
    private readonly actions: WorkloadActions,
    onMore: () => void,
  ) {
    this.more = h('button', { class: 'more', onclick: onMore, 'data-testid': 'more-workloads' }, 'Show older');
    this.element = h('section', { class: 'list' }, h('h2', {}, 'Your workloads'), this.empty, this.list, this.more);
  }

  render(state: ListState): void {
    const shown = new Set<string>();
    state.workloads.forEach((workload, index) => {
      const id = workload.workload_id;
      shown.add(id);
      const item = this.items.get(id) ?? this.item(id);
      const key = itemKey(workload);
      if (item.key !== key) {
        replace(item.link, ...itemContent(workload));
        item.key = key;
      }
      this.actions.render(workload, item.actions);
      const at = this.list.children[index];
      if (at !== item.element) this.list.insertBefore(item.element, at ?? null);
    });
    for (const [id, item] of this.items)
      if (!shown.has(id)) {
        item.element.remove();
        this.items.delete(id);
      }
    this.empty.classList.toggle('hidden', state.workloads.length > 0 || state.more);
    this.more.classList.toggle('hidden', !state.more);
    this.more.disabled = state.loadingMore;
    this.more.textContent = state.loadingMore ? 'Loading…' : 'Show older';
  }

  private item(id: string): Item {
    const link = h('a', {
      href: `#/workloads/${id}`,
      class: 'workload',
      'data-testid': 'workload-link',
      'data-id': id,
    });
    const actions = h('div', { class: 'actions' });
    const element = h('li', { class: 'card', 'data-testid': 'workload-item', 'data-id': id }, link, actions);
    const item: Item = { element, link, actions, key: '' };
    this.items.set(id, item);
    return item;
  }
}
