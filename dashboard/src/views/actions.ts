import { ApiError, type Api } from '../api.js';
import { bytes, h, replace } from '../dom.js';
import type { Workload, WorkloadDeleted } from '../types.js';

export interface ActionHandlers {
  /** The workload as its cancel left it. */
  cancelled(view: Workload): void;
  /** The workload is gone: deleted here (the notice says what was freed), or found deleted already. */
  deleted(id: string, notice: string): void;
  /** A cancel or a delete the server refused, or that did not reach it. */
  failed(message: string): void;
  /** What the buttons show changed (a confirm step, a request in flight): draw them again. */
  redraw(): void;
}

/** A workload can be cancelled until it is completed or cancelled. */
export function cancellable(workload: Workload): boolean {
  return workload.status !== 'completed' && workload.status !== 'cancelled';
}

function plural(count: number, one: string): string {
  return `${count} ${one}${count === 1 ? '' : 's'}`;
}

/** What a deletion freed, for the user. */
export function freedNotice(result: WorkloadDeleted): string {
  const cancelled = result.cancelled_jobs > 0 ? `; ${plural(result.cancelled_jobs, 'unfinished job')} cancelled` : '';
  return (
    `Deleted "${result.workload_name}": ${plural(result.removed_images, 'image')} and ` +
    `${bytes(result.removed_bytes)} freed${cancelled}.`
  );
}

/**
 * The Cancel and Delete buttons of a workload, in the list and on its page. Delete asks first, in place.
 * Which workloads wait for that confirmation, and which have a request in flight, is kept here rather
 * than in the buttons: live updates redraw a running workload several times a second, and each redraw
 * must show the same step.
 */
export class WorkloadActions {
  private readonly confirming = new Set<string>();
  private readonly busy = new Set<string>();
  /** The workload whose confirm step was just opened: its Keep button takes the focus when drawn. */
  private focus: string | null = null;

  constructor(
    private readonly api: Api,
    private readonly handlers: ActionHandlers,
  ) {}

  /** A cancel or a delete of it is on its way. */
  inFlight(id: string): boolean {
    return this.busy.has(id);
  }

  /** Drops every confirm step left open (the user went to another view). */
  dismiss(): void {
    this.confirming.clear();
  }

  /** Draws the buttons into `box`, unless they would look as they do (the box keeps what it shows). */
  render(workload: Workload, box: HTMLElement): void {
    const id = workload.workload_id;
    const confirming = this.confirming.has(id);
    const key = [cancellable(workload), this.busy.has(id), confirming && workload.total_images].join(':');
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    replace(box, ...(confirming ? this.confirmStep(workload) : this.buttons(workload)));
    if (confirming && this.focus === id) {
      this.focus = null;
      box.querySelector<HTMLElement>('[data-testid="keep-workload"]')?.focus();
    }
  }

  private buttons(workload: Workload): HTMLElement[] {
    const id = workload.workload_id;
    const busy = this.busy.has(id);
    return [
      cancellable(workload)
        ? h(
            'button',
            {
              class: 'small',
              disabled: busy,
              title: 'Stop its unfinished jobs; the results so far stay',
              onclick: () => void this.cancel(workload),
              'data-testid': 'cancel-workload',
            },
            'Cancel',
          )
        : null,
      h(
        'button',
        {
          class: 'small danger',
          disabled: busy,
          title: 'Delete it with its images',
          onclick: () => this.step(id, true),
          'data-testid': 'delete-workload',
        },
        'Delete…',
      ),
    ].filter((button) => button !== null);
  }

  private confirmStep(workload: Workload): HTMLElement[] {
    const id = workload.workload_id;
    return [
      h(
        'span',
        { class: 'confirm', 'data-testid': 'confirm-delete-prompt' },
        `Delete "${workload.workload_name}" and its ${plural(workload.total_images, 'image')}?`,
      ),
      h(
        'button',
        { class: 'small danger solid', onclick: () => void this.remove(workload), 'data-testid': 'confirm-delete' },
        'Delete',
      ),
      h('button', { class: 'small', onclick: () => this.step(id, false), 'data-testid': 'keep-workload' }, 'Keep'),
    ];
  }

  private step(id: string, confirming: boolean): void {
    if (confirming) this.confirming.add(id);
    else this.confirming.delete(id);
    this.focus = confirming ? id : null;
    this.handlers.redraw();
  }

  private cancel(workload: Workload): Promise<void> {
    return this.request(workload.workload_id, async () =>
      this.handlers.cancelled(await this.api.cancel(workload.workload_id)),
    );
  }

  private remove(workload: Workload): Promise<void> {
    const id = workload.workload_id;
    this.confirming.delete(id);
    return this.request(id, async () => {
      try {
        this.handlers.deleted(id, freedNotice(await this.api.deleteWorkload(id)));
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        this.handlers.deleted(id, `"${workload.workload_name}" was deleted already.`);
      }
    });
  }

  private async request(id: string, send: () => Promise<void>): Promise<void> {
    this.busy.add(id);
    this.handlers.redraw();
    try {
      await send();
    } catch (error) {
      this.handlers.failed(error instanceof Error ? error.message : String(error));
    } finally {
      this.busy.delete(id);
      this.handlers.redraw();
    }
  }
}
