import { ApiError, type Api } from '../api.js';
import { bytes, h, replace } from '../dom.js';
import { droppedFiles } from '../files.js';
import type { ImageItem, Workload } from '../types.js';
import { UploadQueue } from '../uploads.js';
import type { WorkloadActions } from './actions.js';
import { FORMAT_NAMES, processing } from './chain.js';
import { openLightbox } from './lightbox.js';
import { picture } from './picture.js';
import { lifecycleNotes, progressBar, statusBadge } from './progress.js';

const REFRESH_MS = 400;

/** One workload: its progress, the drop zone and uploads, and the gallery of results. */
export class WorkloadPage {
  readonly element: HTMLElement;
  private readonly head = h('div', { class: 'head' });
  /** Redrawn on every update, unlike the Cancel and Delete buttons beside it. */
  private readonly summary = h('div', { class: 'summary' });
  private readonly buttons = h('div', { class: 'buttons' });
  private readonly actions = h('div', { class: 'actions' });
  private readonly zone: HTMLElement;
  private readonly zoneHint = h('span', { class: 'muted' });
  private readonly gallery = h('div', { class: 'gallery', 'data-testid': 'gallery' });
  private readonly uploads: UploadQueue;
  private readonly thumbs = new Map<string, HTMLElement>();
  private refreshTimer: number | undefined;
  private refreshing = false;
  private again = false;

  constructor(
    private readonly api: Api,
    private workload: Workload,
    private readonly workloadActions: WorkloadActions,
  ) {
    const list = h('ul', { class: 'uploads', 'data-testid': 'uploads' });
    const overall = h('div', { class: 'overall' });
    this.uploads = new UploadQueue(api, workload.workload_id, list, overall, () => this.refreshSoon());
    this.zone = this.dropZone();
    replace(
      this.head,
      this.summary,
      h('div', { class: 'row' }, this.buttons, h('span', { class: 'spacer' }), this.actions),
    );
    this.element = h(
      'section',
      { class: 'workload-page', 'data-testid': 'workload-page', 'data-id': workload.workload_id },
      h('a', { href: '#/', class: 'back' }, '← All workloads'),
      this.head,
      this.zone,
      overall,
      list,
      h('h2', {}, 'Results'),
      this.gallery,
    );
    this.renderHead();
    void this.refresh();
  }

  get id(): string {
    return this.workload.workload_id;
  }

  get name(): string {
    return this.workload.workload_name;
  }

  /** A newer view of this workload arrived (live update). */
  update(workload: Workload): void {
    this.workload = workload;
    this.renderHead();
    this.refreshSoon();
  }

  close(): void {
    window.clearTimeout(this.refreshTimer);
  }

  /** The workload was deleted: files not sent yet would only be refused. */
  deleted(): void {
    this.close();
    this.uploads.stop();
  }

  /** The Cancel and Delete buttons again (their step or their request in flight changed). */
  redrawActions(): void {
    this.workloadActions.render(this.workload, this.actions);
  }

  private renderHead(): void {
    const workload = this.workload;
    const hasResults = workload.done_jobs > 0;
    const cancelled = this.cancelled;
    replace(
      this.summary,
      h('header', {}, h('h1', {}, workload.workload_name), statusBadge(workload)),
      h(
        'p',
        { class: 'muted meta' },
        processing(workload, 'filter '),
        `${workload.tags.length ? ` · tags ${workload.tags.join(', ')}` : ''} · ` +
          `created ${new Date(workload.created_at).toLocaleString()}`,
        ...lifecycleNotes(workload),
      ),
      progressBar(workload),
    );
    replace(
      this.buttons,
      h(
        'button',
        {
          class: hasResults ? 'primary' : undefined,
          disabled: !hasResults,
          onclick: () => void this.download(),
          'data-testid': 'download-all',
        },
        `Download all (${workload.done_jobs}) as ZIP`,
      ),
      workload.failed_jobs > 0 && !cancelled
        ? h(
            'button',
            { onclick: () => void this.retry(), 'data-testid': 'retry-all' },
            `Retry ${workload.failed_jobs} failed`,
          )
        : null,
    );
    this.redrawActions();
    this.zone.classList.toggle('disabled', cancelled);
    this.zone.setAttribute('aria-disabled', String(cancelled));
    this.zoneHint.textContent = cancelled
      ? 'cancelled: it takes no more images'
      : 'or click to choose files · PNG or JPEG';
  }

  /** A cancelled workload takes no more images, and its failed jobs are not retried. */
  private get cancelled(): boolean {
    return this.workload.status === 'cancelled';
  }

  private dropZone(): HTMLElement {
    const input = h('input', {
      type: 'file',
      multiple: true,
      accept: 'image/png,image/jpeg',
      class: 'hidden',
      'data-testid': 'file-input',
    });
    input.addEventListener('change', () => {
      if (input.files) this.uploads.add([...input.files]);
      input.value = '';
    });
    const zone = h(
      'div',
      {
        class: 'dropzone',
        tabindex: 0,
        role: 'button',
        'data-testid': 'dropzone',
        onclick: () => !this.cancelled && input.click(),
        onkeydown: (event: Event) => (event as KeyboardEvent).key === 'Enter' && !this.cancelled && input.click(),
      },
      h('strong', {}, 'Drop images or a folder here'),
      this.zoneHint,
      input,
    );
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('over');
      if (event.dataTransfer && !this.cancelled)
        void droppedFiles(event.dataTransfer).then((files) => this.uploads.add(files));
    });
    return zone;
  }

  /** Downloads the archive through a link made at the click: its token is good for a minute only. */
  private async download(): Promise<void> {
    try {
      const link = h('a', {
        href: await this.api.archiveUrl(this.workload.workload_id),
        download: `${this.workload.workload_name}.zip`,
        class: 'hidden',
      });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      window.alert(error instanceof ApiError ? error.message : String(error));
    }
  }

  private async retry(): Promise<void> {
    try {
      this.update(await this.api.retry(this.workload.workload_id));
    } catch (error) {
      window.alert(error instanceof ApiError ? error.message : String(error));
    }
  }

  private refreshSoon(): void {
    if (this.refreshTimer === undefined) this.refreshTimer = window.setTimeout(() => void this.refresh(), REFRESH_MS);
  }

  /** Fetches the image list and updates the gallery in place (one refresh at a time). */
  private async refresh(): Promise<void> {
    this.refreshTimer = undefined;
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    try {
      const { images } = await this.api.images(this.workload.workload_id);
      this.renderGallery(images);
    } catch {
      // the next live update refreshes again
    } finally {
      this.refreshing = false;
      if (this.again) {
        this.again = false;
        this.refreshSoon();
      }
    }
  }

  private renderGallery(images: ImageItem[]): void {
    const originals = images.filter((image) => image.type === 'original');
    if (originals.length === 0) {
      replace(this.gallery, h('p', { class: 'muted' }, 'No images yet.'));
      return;
    }
    this.gallery.querySelector(':scope > p')?.remove();
    const results = new Map(
      images.filter((image) => image.type === 'filtered').map((image) => [image.image_id, image] as const),
    );
    for (const original of originals) {
      const result = original.filtered_image_id ? results.get(original.filtered_image_id) : undefined;
      const key =
        `${original.image_id}:${original.job_state}:${original.filtered_image_id ?? ''}:${result ? 1 : 0}:` +
        `${this.cancelled}`;
      const existing = this.thumbs.get(original.image_id);
      if (existing?.dataset.key === key) continue;
      const tile = this.tile(original, result);
      tile.dataset.key = key;
      if (existing) existing.replaceWith(tile);
      else this.gallery.appendChild(tile);
      this.thumbs.set(original.image_id, tile);
    }
  }

  private thumb(id: string, label: string): HTMLElement {
    return picture(this.api, id, label, { loading: 'lazy' });
  }

  private tile(original: ImageItem, result: ImageItem | undefined): HTMLElement {
    const state = original.job_state ?? 'queued';
    const after =
      state === 'done' && original.filtered_image_id
        ? this.thumb(original.filtered_image_id, 'After')
        : state === 'failed'
          ? h(
              'figure',
              { class: 'failed' },
              h('div', { class: 'placeholder error', 'data-testid': 'image-error' }, original.error ?? 'failed'),
              h(
                'figcaption',
                {},
                this.cancelled
                  ? 'After'
                  : h(
                      'button',
                      {
                        class: 'small',
                        onclick: (event: Event) => {
                          event.stopPropagation();
                          void this.retry();
                        },
                        'data-testid': 'retry-image',
                      },
                      'Retry',
                    ),
              ),
            )
          : h(
              'figure',
              {},
              h(
                'div',
                { class: `placeholder ${state}` },
                state === 'cancelled' ? null : h('span', { class: 'spinner' }),
                state,
              ),
              h('figcaption', {}, 'After'),
            );
    const before = describeImage(original);
    const caption = result ? `${before} → ${describeImage(result)}` : before;
    return h(
      'article',
      {
        class: `tile ${state}`,
        'data-testid': 'tile',
        'data-state': state,
        tabindex: 0,
        title: 'Click to compare',
        onclick: () => openLightbox(this.api, original.image_id, original.filtered_image_id, caption),
      },
      h('div', { class: 'pair' }, this.thumb(original.image_id, 'Before'), after),
      h(
        'p',
        { class: 'muted sizes' },
        h('span', { 'data-testid': 'original-info' }, before),
        result
          ? h(
              'span',
              {
                'data-testid': 'result-info',
                'data-format': result.format,
                'data-width': result.width,
                'data-height': result.height,
              },
              describeImage(result),
            )
          : null,
      ),
    );
  }
}

/** An image's format, dimensions and size: "WebP 640×360 · 24.1 KiB". */
function describeImage(image: ImageItem): string {
  return `${FORMAT_NAMES[image.format] ?? image.format} ${image.width}×${image.height} · ${bytes(image.bytes)}`;
}
