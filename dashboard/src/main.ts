// The dashboard: sign-in, the workers live, the user's workloads, and one workload's uploads and results.
import { Api } from './api.js';
import { h, replace } from './dom.js';
import { connectLive, type Live } from './live.js';
import type { Session, Worker, Workload } from './types.js';
import { WorkloadActions } from './views/actions.js';
import { renderLogin } from './views/login.js';
import { renderWorkers } from './views/workers.js';
import { WorkloadPage } from './views/workload.js';
import { createForm, WorkloadList } from './views/workloads.js';

const SESSION_KEY = 'dpip.session';
/** Workloads per page of the list; a reload asks for as many as are shown, up to the server's most. */
const PAGE = 20;
const MAX_PAGE = 500;
const root = document.getElementById('app')!;

function savedSession(): Session | null {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
    return session && typeof session.token === 'string' && typeof session.user === 'string' ? session : null;
  } catch {
    return null;
  }
}

/** The server's order of the list, oldest first: creation time, then id. */
function creationOrder(a: Workload, b: Workload): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? -1 : 1;
  return a.workload_id < b.workload_id ? -1 : a.workload_id > b.workload_id ? 1 : 0;
}

/** The signed-in app; one per session. */
class App {
  private readonly api: Api;
  private readonly live: Live;
  private readonly actions: WorkloadActions;
  /** The workloads the list has loaded: its first pages, and those made since. */
  private readonly workloads = new Map<string, Workload>();
  /** Deleted while this app runs: a view of one that arrives late is not shown again. */
  private readonly gone = new Set<string>();
  /** Where the next (older) page of the list starts; null once the oldest is loaded. */
  private nextCursor: string | null = null;
  private loadingMore = false;
  /** Counts reloads: a page asked for before the latest reload is dropped. */
  private generation = 0;
  private readonly workersPanel = h('aside', { class: 'workers', 'data-testid': 'workers' });
  private readonly content = h('main', { class: 'content' });
  private readonly notice = h('p', { class: 'notice hidden', role: 'status', 'data-testid': 'notice' });
  /** The next route keeps the notice (it was set for the page that route opens). */
  private keepNotice = false;
  private readonly indicator = h(
    'span',
    { class: 'live off', 'data-testid': 'live', title: 'live updates' },
    'connecting',
  );
  private page: WorkloadPage | null = null;
  private list: WorkloadList | null = null;
  private ended = false;

  constructor(session: Session) {
    this.api = new Api(session, () => this.end('Your session ended: log in again.'));
    this.actions = new WorkloadActions(this.api, {
      cancelled: (view) => this.workloadChanged(view),
      deleted: (id, notice) => this.workloadDeleted(id, notice),
      failed: (message) => this.setNotice(message, 'error'),
      redraw: () => {
        this.renderList();
        this.page?.redrawActions();
      },
    });
    replace(
      root,
      h(
        'header',
        { class: 'topbar' },
        h('a', { href: '#/', class: 'brand' }, 'DPIP'),
        this.indicator,
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted', 'data-testid': 'user' }, session.user),
        h('button', { onclick: () => void this.logout(), 'data-testid': 'logout' }, 'Log out'),
      ),
      h('div', { class: 'layout' }, this.content, this.workersPanel),
    );
    renderWorkers(this.workersPanel, []);
    window.addEventListener('hashchange', this.route);
    this.live = connectLive(() => this.api.eventsUrl(), {
      open: () => void this.reload(),
      workload: (view) => this.workloadChanged(view),
      workloadDeleted: (id) => this.workloadDeleted(id),
      workers: (workers) => this.workersChanged(workers),
      logout: () => this.end('Your session ended: log in again.'),
      state: (state) => {
        this.indicator.textContent = state === 'live' ? 'live' : 'reconnecting…';
        this.indicator.className = `live ${state === 'live' ? 'on' : 'off'}`;
      },
    });
    this.route();
  }

  private readonly route = (): void => {
    const match = /^#\/workloads\/([^/]+)$/.exec(location.hash);
    this.page?.close();
    this.page = null;
    this.list = null;
    this.actions.dismiss();
    if (!this.keepNotice) this.setNotice('');
    this.keepNotice = false;
    if (match) return void this.openWorkload(decodeURIComponent(match[1]!));
    this.api.forgetImages();
    this.list = new WorkloadList(this.actions, () => void this.more());
    replace(
      this.content,
      this.notice,
      createForm(this.api, (workload) => {
        this.workloads.set(workload.workload_id, workload);
        location.hash = `#/workloads/${workload.workload_id}`;
      }),
      this.list.element,
    );
    this.renderList();
    void this.reload();
  };

  private async openWorkload(id: string): Promise<void> {
    try {
      const workload = await this.api.workload(id);
      if (this.ended || location.hash !== `#/workloads/${id}`) return;
      this.page = new WorkloadPage(this.api, workload, this.actions);
      replace(this.content, this.notice, this.page.element);
    } catch (error) {
      replace(
        this.content,
        this.notice,
        h('p', { class: 'message' }, error instanceof Error ? error.message : String(error)),
        h('a', { href: '#/' }, '← All workloads'),
      );
    }
  }

  /**
   * Everything again, after (re)connecting: events may have been missed meanwhile. The list keeps as
   * many workloads as it showed, so a reconnect does not fold the older pages away.
   */
  private async reload(): Promise<void> {
    const generation = ++this.generation;
    try {
      const limit = Math.min(MAX_PAGE, Math.max(PAGE, this.workloads.size));
      const [page, { workers }] = await Promise.all([this.api.workloads({ limit }), this.api.workers()]);
      if (generation !== this.generation) return;
      this.workloads.clear();
      for (const workload of page.workloads) this.workloads.set(workload.workload_id, workload);
      this.nextCursor = page.next_cursor;
      this.workersChanged(workers);
      const current = this.page && this.workloads.get(this.page.id);
      if (current) this.page?.update(current);
    } catch {
      // the live connection retries and reloads again
    } finally {
      if (generation === this.generation) {
        this.loadingMore = false;
        this.renderList();
      }
    }
  }

  /** The next older page of the list. */
  private async more(): Promise<void> {
    const cursor = this.nextCursor;
    if (cursor === null || this.loadingMore) return;
    const generation = this.generation;
    this.loadingMore = true;
    this.renderList();
    try {
      const page = await this.api.workloads({ limit: PAGE, cursor });
      if (generation !== this.generation) return;
      for (const workload of page.workloads)
        if (!this.gone.has(workload.workload_id)) this.workloads.set(workload.workload_id, workload);
      this.nextCursor = page.next_cursor;
    } catch (error) {
      if (generation === this.generation)
        this.setNotice(error instanceof Error ? error.message : String(error), 'error');
    } finally {
      if (generation === this.generation) {
        this.loadingMore = false;
        this.renderList();
      }
    }
  }

  /**
   * A newer view of a workload: shown if the list has it, or if it falls among the pages loaded (a new
   * one does, on top); one older than those comes with its page.
   */
  private workloadChanged(view: Workload): void {
    const id = view.workload_id;
    if (this.gone.has(id)) return;
    if (this.page?.id === id) this.page.update(view);
    if (!this.workloads.has(id) && this.nextCursor !== null) {
      const loaded = [...this.workloads.values()];
      if (loaded.length > 0 && loaded.every((workload) => creationOrder(view, workload) < 0)) return;
    }
    this.workloads.set(id, view);
    this.renderList();
  }

  /**
   * A workload is gone: out of the list, and its page, if open, goes back to the list. `notice` is what a
   * deletion from here freed; a deletion from elsewhere says so itself, unless this app is deleting it too
   * (then the answer to its own request says what was freed).
   */
  private workloadDeleted(id: string, notice?: string): void {
    const name = this.workloads.get(id)?.workload_name ?? (this.page?.id === id ? this.page.name : null);
    this.gone.add(id);
    this.workloads.delete(id);
    this.renderList();
    if (notice === undefined && this.actions.inFlight(id)) return;
    const text = notice ?? (name ? `"${name}" was deleted.` : '');
    if (this.page?.id !== id) {
      if (notice !== undefined) this.setNotice(text);
      return;
    }
    this.page.deleted();
    this.setNotice(text);
    this.keepNotice = true;
    location.hash = '#/';
  }

  private setNotice(text: string, kind: 'info' | 'error' = 'info'): void {
    this.notice.textContent = text;
    this.notice.className = text ? `notice ${kind}` : 'notice hidden';
  }

  private workersChanged(workers: Worker[]): void {
    renderWorkers(this.workersPanel, workers);
  }

  private renderList(): void {
    if (!this.list) return;
    const newestFirst = [...this.workloads.values()].sort((a, b) => creationOrder(b, a));
    this.list.render({ workloads: newestFirst, more: this.nextCursor !== null, loadingMore: this.loadingMore });
  }

  private async logout(): Promise<void> {
    await this.api.logout();
    this.end('');
  }

  private end(notice: string): void {
    if (this.ended) return;
    this.ended = true;
    this.live.close();
    this.page?.close();
    this.api.forgetImages();
    window.removeEventListener('hashchange', this.route);
    localStorage.removeItem(SESSION_KEY);
    showLogin(notice);
  }
}

function showLogin(notice = ''): void {
  renderLogin(
    root,
    (session) => {
      localStorage.setItem(SESSION_KEY, JSON.stringify(session));
      new App(session);
    },
    notice,
  );
}

const session = savedSession();
if (session) new App(session);
else showLogin();
