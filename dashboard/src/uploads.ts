import { ApiError, type Api } from './api.js';
import { bytes, h, percent, replace } from './dom.js';

const AT_ONCE = 3;

interface Item {
  file: File;
  loaded: number;
  bar: HTMLElement;
  status: HTMLElement;
  row: HTMLElement;
}

/**
 * Uploads files into a workload, a few at a time, each with its own progress and the API's answer;
 * an overall bar sums them up. Bad files stay listed with the API's error.
 */
export class UploadQueue {
  private readonly waiting: Item[] = [];
  private readonly all: Item[] = [];
  private running = 0;
  private failed = 0;
  private done = 0;

  constructor(
    private readonly api: Api,
    private readonly workloadId: string,
    private readonly list: HTMLElement,
    private readonly overall: HTMLElement,
    private readonly onUploaded: () => void,
  ) {}

  add(files: File[]): void {
    // the newest batch on top, each batch in its own order
    const batch = document.createDocumentFragment();
    for (const file of files) {
      const bar = h('span', { class: 'fill' });
      const status = h('span', { class: 'status muted' }, 'waiting');
      const row = h(
        'li',
        { class: 'upload', 'data-testid': 'upload-row', 'data-state': 'waiting' },
        h('span', { class: 'name', title: file.name }, file.name),
        h('span', { class: 'muted' }, bytes(file.size)),
        h('span', { class: 'minibar' }, bar),
        status,
      );
      const item: Item = { file, loaded: 0, bar, status, row };
      batch.appendChild(row);
      this.waiting.push(item);
      this.all.push(item);
    }
    this.list.prepend(batch);
    this.pump();
    this.summarize();
  }

  /** Sends nothing more: the files still waiting are marked as not sent (those on their way finish). */
  stop(): void {
    for (const item of this.waiting.splice(0)) this.refused(item, 'not sent: the workload is gone');
    this.summarize();
  }

  private pump(): void {
    while (this.running < AT_ONCE && this.waiting.length > 0) {
      const item = this.waiting.shift()!;
      this.running += 1;
      void this.send(item).finally(() => {
        this.running -= 1;
        this.pump();
        this.summarize();
      });
    }
  }

  private async send(item: Item): Promise<void> {
    item.row.dataset.state = 'uploading';
    item.status.textContent = 'uploading';
    try {
      const { via } = await this.api.upload(this.workloadId, item.file, (fraction) => {
        item.loaded = fraction * item.file.size;
        item.bar.style.width = percent(fraction);
        this.summarize();
      });
      // through an upload slot (straight to the object store) or through the server
      item.row.dataset.via = via;
      item.loaded = item.file.size;
      item.bar.style.width = '100%';
      item.row.dataset.state = 'done';
      item.status.textContent = 'uploaded';
      item.status.className = 'status ok';
      this.done += 1;
      this.onUploaded();
    } catch (error) {
      this.refused(item, error instanceof ApiError ? error.message : String(error));
    }
  }

  private refused(item: Item, reason: string): void {
    item.loaded = item.file.size;
    item.row.dataset.state = 'failed';
    item.row.classList.add('failed');
    item.status.textContent = reason;
    item.status.className = 'status error';
    this.failed += 1;
  }

  private summarize(): void {
    const total = this.all.reduce((sum, item) => sum + item.file.size, 0);
    const loaded = this.all.reduce((sum, item) => sum + item.loaded, 0);
    const left = this.all.length - this.done - this.failed;
    replace(
      this.overall,
      h(
        'span',
        { class: 'minibar wide' },
        h('span', { class: 'fill', style: `width:${total > 0 ? percent(loaded / total) : '0%'}` }),
      ),
      h(
        'span',
        { class: 'muted', 'data-testid': 'upload-summary' },
        `${this.done} uploaded${this.failed ? `, ${this.failed} refused` : ''}${left ? `, ${left} to go` : ''} · ` +
          `${bytes(loaded)} of ${bytes(total)}`,
      ),
    );
  }
}
