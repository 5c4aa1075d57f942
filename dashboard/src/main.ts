// The dashboard: sign-in, the workers live, the user's workloads, and one workload's uploads and results.
import { Api } from './api.js';
import { h, replace } from './dom.js';
import { connectLive, type Live } from './live.js';
import type { Session, Worker, Workload } from './types.js';
import { renderLogin } from './views/login.js';
import { renderWorkers } from './views/workers.js';
import { WorkloadPage } from './views/workload.js';
import { createForm, renderWorkloadList } from './views/workloads.js';

const SESSION_KEY = 'dpip.session';
const root = document.getElementById('app')!;

function savedSession(): Session | null {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
    return session && typeof session.token === 'string' && typeof session.user === 'string' ? session : null;
  } catch {
    return null;
  }
}

/** The signed-in app; one per session. */
class App {
  private readonly api: Api;
  private readonly live: Live;
  private readonly workloads = new Map<string, Workload>();
  private readonly workersPanel = h('aside', { class: 'workers', 'data-testid': 'workers' });
  private readonly content = h('main', { class: 'content' });
  private readonly indicator = h(
    'span',
    { class: 'live off', 'data-testid': 'live', title: 'live updates' },
    'connecting',
  );
  private page: WorkloadPage | null = null;
  private listContainer: HTMLElement | null = null;
  private ended = false;

  constructor(session: Session) {
    this.api = new Api(session, () => this.end('Your session ended: log in again.'));
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
    this.listContainer = null;
    if (match) return void this.openWorkload(decodeURIComponent(match[1]!));
    this.api.forgetImages();
    this.listContainer = h('section', { class: 'list' });
    replace(
      this.content,
      createForm(this.api, (workload) => {
        this.workloads.set(workload.workload_id, workload);
        location.hash = `#/workloads/${workload.workload_id}`;
      }),
      this.listContainer,
    );
    this.renderList();
    void this.reload();
  };

  private async openWorkload(id: string): Promise<void> {
    try {
      const workload = await this.api.workload(id);
      if (this.ended || location.hash !== `#/workloads/${id}`) return;
      this.page = new WorkloadPage(this.api, workload);
      replace(this.content, this.page.element);
    } catch (error) {
      replace(
        this.content,
        h('p', { class: 'message' }, error instanceof Error ? error.message : String(error)),
        h('a', { href: '#/' }, '← All workloads'),
      );
    }
  }

  /** Everything again, after (re)connecting: events may have been missed meanwhile. */
  private async reload(): Promise<void> {
    try {
      const [{ workloads }, { workers }] = await Promise.all([this.api.workloads(), this.api.workers()]);
      this.workloads.clear();
      for (const workload of workloads) this.workloads.set(workload.workload_id, workload);
      this.renderList();
      this.workersChanged(workers);
      const page = this.page;
      if (page) {
        const current = this.workloads.get(page.id);
        if (current) page.update(current);
      }
    } catch {
      // the live connection retries and reloads again
    }
  }

  private workloadChanged(view: Workload): void {
    this.workloads.set(view.workload_id, view);
    if (this.page?.id === view.workload_id) this.page.update(view);
    this.renderList();
  }

  private workersChanged(workers: Worker[]): void {
    renderWorkers(this.workersPanel, workers);
  }

  private renderList(): void {
    if (!this.listContainer) return;
    const newestFirst = [...this.workloads.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    renderWorkloadList(this.listContainer, newestFirst);
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
