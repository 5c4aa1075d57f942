import type {
  ImageItem,
  OperationCatalogue,
  Session,
  StepRequest,
  Worker,
  Workload,
  WorkloadDeleted,
  WorkloadPage,
} from './types.js';

/** An error the API answered with: its status and its message, meant for the user. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message) return new ApiError(response.status, body.error.message);
  } catch {
    // not JSON: a proxy's page, say
  }
  return new ApiError(response.status, `${response.status} ${response.statusText}`);
}

/** A workload to create: of a course filter, or of a chain of operations. */
export type NewWorkload = { workload_name?: string; tags: string[] } & (
  | { filter: string }
  | { operations: StepRequest[] }
);

/** The REST API with the session's token; a 401 anywhere means the session is over. */
export class Api {
  private readonly blobs = new Map<string, Promise<string>>();
  private catalogue: Promise<OperationCatalogue> | null = null;

  constructor(
    private session: Session | null,
    private readonly onLoggedOut: () => void,
  ) {}

  get user(): string | null {
    return this.session?.user ?? null;
  }

  get token(): string {
    return this.session?.token ?? '';
  }

  static async login(username: string, password: string): Promise<Session> {
    const response = await fetch('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as Session;
  }

  static async register(username: string, password: string): Promise<void> {
    const response = await fetch('/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!response.ok) throw await errorOf(response);
  }

  async logout(): Promise<void> {
    await fetch('/logout', { method: 'DELETE', headers: this.headers() }).catch(() => undefined);
    this.forgetImages();
  }

  /** One page of the user's workloads, newest first: from the newest, or after `cursor` (a next_cursor). */
  workloads(page: { limit: number; cursor?: string }): Promise<WorkloadPage> {
    const query = new URLSearchParams({ limit: String(page.limit) });
    if (page.cursor) query.set('cursor', page.cursor);
    return this.json('GET', `/workloads?${query}`);
  }

  workload(id: string): Promise<Workload> {
    return this.json('GET', `/workloads/${encodeURIComponent(id)}`);
  }

  /** What a chain may hold (GET /operations): asked once, and again after a failure. */
  operations(): Promise<OperationCatalogue> {
    if (!this.catalogue) {
      const asked = this.json<OperationCatalogue>('GET', '/operations');
      asked.catch(() => {
        if (this.catalogue === asked) this.catalogue = null;
      });
      this.catalogue = asked;
    }
    return this.catalogue;
  }

  createWorkload(request: NewWorkload): Promise<Workload> {
    return this.json('POST', '/workloads', request);
  }

  cancel(id: string): Promise<Workload> {
    return this.json('POST', `/workloads/${encodeURIComponent(id)}/cancel`);
  }

  deleteWorkload(id: string): Promise<WorkloadDeleted> {
    return this.json('DELETE', `/workloads/${encodeURIComponent(id)}`);
  }

  retry(id: string): Promise<Workload & { retried_jobs: number }> {
    return this.json('POST', `/workloads/${encodeURIComponent(id)}/retry`);
  }

  images(workloadId: string): Promise<{ images: ImageItem[] }> {
    return this.json('GET', `/images?workload_id=${encodeURIComponent(workloadId)}`);
  }

  workers(): Promise<{ workers: Worker[] }> {
    return this.json('GET', '/workers');
  }

  /**
   * A link that downloads the archive. A link cannot send headers, so it carries a token in its URL: a
   * short-lived one, for this archive only, never the session's own.
   */
  archiveUrl(workloadId: string): Promise<string> {
    return this.urlWithToken(`/workloads/${encodeURIComponent(workloadId)}/archive/token`);
  }

  /** The URL of the event stream, with a short-lived token for it (EventSource cannot send headers either). */
  eventsUrl(): Promise<string> {
    return this.urlWithToken('/events/token');
  }

  private async urlWithToken(path: string): Promise<string> {
    return (await this.json<{ url: string }>('POST', path)).url;
  }

  /** An image as an object URL (an <img> cannot send the token); fetched once per id. */
  imageUrl(id: string): Promise<string> {
    let url = this.blobs.get(id);
    if (!url) {
      url = fetch(`/images/${encodeURIComponent(id)}`, { headers: this.headers() }).then(async (response) => {
        if (!response.ok) throw await errorOf(response);
        return URL.createObjectURL(await response.blob());
      });
      url.catch(() => this.blobs.delete(id));
      this.blobs.set(id, url);
    }
    return url;
  }

  forgetImages(): void {
    for (const url of this.blobs.values())
      void url.then(
        (href) => URL.revokeObjectURL(href),
        () => undefined,
      );
    this.blobs.clear();
  }

  /** Uploads one original with progress (fetch cannot report upload progress; XMLHttpRequest can). */
  upload(workloadId: string, file: File, onProgress: (fraction: number) => void): Promise<{ image_id: string }> {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      form.set('workload_id', workloadId);
      form.set('data', file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/images');
      xhr.setRequestHeader('authorization', `Bearer ${this.token}`);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onerror = () => reject(new ApiError(0, 'the connection to the server failed'));
      xhr.onload = () => {
        let body: { image_id?: string; error?: { message?: string } } = {};
        try {
          body = JSON.parse(xhr.responseText) as typeof body;
        } catch {
          // handled below
        }
        if (xhr.status === 201 && body.image_id) return resolve({ image_id: body.image_id });
        if (xhr.status === 401) this.onLoggedOut();
        reject(new ApiError(xhr.status, body.error?.message ?? `${xhr.status} ${xhr.statusText}`));
      };
      xhr.send(form);
    });
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = this.headers();
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) this.onLoggedOut();
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }
}
