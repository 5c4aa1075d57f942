import type { Worker, Workload } from './types.js';

export interface LiveHandlers {
  /** Connected (again): anything may have changed meanwhile. */
  open(): void;
  workload(view: Workload): void;
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
 * Server-Sent Events with reconnection. EventSource retries by itself after a dropped connection, but
 * gives up for good when a reconnect is refused (the server restarting, say): then a new one is made,
 * after a growing pause.
 */
export function connectLive(url: () => string, handlers: LiveHandlers): Live {
  let source: EventSource | null = null;
  let timer: number | undefined;
  let pause = 1000;
  let closed = false;

  function parse<T>(event: Event): T {
    return JSON.parse((event as MessageEvent<string>).data) as T;
  }

  function connect(): void {
    source = new EventSource(url());
    source.addEventListener('open', () => {
      pause = 1000;
      handlers.state('live');
      handlers.open();
    });
    source.addEventListener('workload', (event) => handlers.workload(parse<Workload>(event)));
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
        timer = window.setTimeout(connect, pause);
        pause = Math.min(15_000, pause * 2);
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
