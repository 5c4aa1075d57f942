// A Server-Sent Events client for tests: parses the stream as EventSource would, keeps every event
// and comment, and waits for the ones a test expects.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  event: string;
  data: unknown;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  private buffer = '';
  private waiters: (() => void)[] = [];
  ended = false;

  private constructor(
    private readonly req: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.take(chunk));
    response.on('end', () => this.finish());
    response.on('close', () => this.finish());
  }

  /** Opens `path` on the server at `url`; resolves once the response headers arrive (any status). */
  static open(url: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
      req.on('response', (response) => resolve(new SseClient(req, response)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The first event named `name` (kept or yet to come) that `match` accepts. */
  async next<T>(name: string, match: (data: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((item) => item.event === name && match(item.data as T));
      if (found) return found.data as T;
      if (this.ended) throw new Error(`the stream ended before a "${name}" event`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching "${name}" event within ${timeoutMs} ms; got ${this.events.map((item) => item.event).join(', ')}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server ends the stream. */
  async closedByServer(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the server did not end the stream');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.req.destroy();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments += 1;
        else if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
        else continue;
        fields += 1;
      }
      if (data.length > 0 && fields > 0)
        this.events.push({ event: name, data: JSON.parse(data.join('\n')) as unknown });
    }
    this.wake();
  }

  private finish(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
