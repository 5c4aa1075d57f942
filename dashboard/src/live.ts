import type { Worker, Workload } from './types.js';

export interface LiveHandlers {
  /** Connected (again): anything may have changed meanwhile. */
  open(): void;
  /** A workload of the user's was made or changed (its newest view). */
  workload(view: Workload): void;
  /** A workload of the user's was deleted (here, in another tab, by another client, or by retention). */
  workloadDeleted(id: string): void;
  workers(workers: Worker[]): void;
  /** The server ended the session (token revoked or expired). */
  logout(): void;
  /** For the connection indicator. */
  state(state: 'live' | 'reconnecting'): void;
}

export interface Live {
  close(): void;
}

/**
 * Server-Sent Events with reconnection. `url` gives a fresh URL for each connection (its token lasts a
 * minute; the stream, once open, lasts as long as the session). EventSource retries by itself after a
 * dropped connection, with the same URL, but gives up for good when a reconnect is refused (the server
 * restarting, or the URL's token expired meanwhile): then a new one is made with a new URL, after a
 * growing pause.
 */
export function connectLive(url: () => Promise<string>, handlers: LiveHandlers): Live {
  let source: EventSource | null = null;
  let timer: number | undefined;
  let pause = 1000;
  let closed = false;

  function parse<T>(event: Event): T {
    return JSON.parse((event as MessageEvent<string>).data) as T;
  }

  function later(): void {
    timer = window.setTimeout(connect, pause);
    pause = Math.min(15_000, pause * 2);
  }

  function connect(): void {
    url().then(
      (href) => {
        if (!closed) listen(href);
      },
      () => {
        // the server is away (or the session is over: then the app closes this)
        if (closed) return;
        handlers.state('reconnecting');
        later();
      },
    );
  }

  function listen(href: string): void {
    source = new EventSource(href);
    source.addEventListener('open', () => {
      pause = 1000;
      handlers.state('live');
      handlers.open();
    });
    source.addEventListener('workload', (event) => handlers.workload(parse<Workload>(event)));
    source.addEventListener('workload_deleted', (event) =>
      handlers.workloadDeleted(parse<{ workload_id: string }>(event).workload_id),
    );
    source.addEventListener('workers', (event) => handlers.workers(parse<{ workers: Worker[] }>(event).workers));
    source.addEventListener('logout', () => {
      closed = true;
      source?.close();
      handlers.logout();
    });
    source.addEventListener('error', () => {
      if (closed) return;
      handlers.state('reconnecting');
      if (source?.readyState === EventSource.CLOSED) {
        source = null;
        later();
      }
    });
  }

  connect();
  return {
    close() {
      closed = true;
      window.clearTimeout(timer);
      source?.close();
    },
  };
}
