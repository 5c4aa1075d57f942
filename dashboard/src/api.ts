import type {
  ImageItem,
  OperationCatalogue,
  ServerStatus,
  Session,
  StepRequest,
  UploadSlot,
  UploadVia,
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

/** The content type of an upload slot for the file, from its first bytes; null when it is neither PNG nor JPEG. */
async function slotType(file: File): Promise<'image/png' | 'image/jpeg' | null> {
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return 'image/png';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  return null;
}

/** An upload that could not reach the object store at all (no answer: CORS, CSP, network), for a fallback. */
class StoreUnreachable extends Error {}

/** A workload to create: of a course filter, or of a chain of operations. */
export type NewWorkload = { workload_name?: string; tags: string[] } & (
  | { filter: string }
  | { operations: StepRequest[] }
);

/** The REST API with the session's token; a 401 anywhere means the session is over. */
export class Api {
  private readonly blobs = new Map<string, Promise<string>>();
  private catalogue: Promise<OperationCatalogue> | null = null;
  /** Whether originals go through upload slots: GET /status, asked once (again after a failure). */
  private slots: Promise<boolean> | null = null;

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

  /**
   * Uploads one original with progress: through an upload slot when the server offers them (the bytes go
   * straight to its object store), else through POST /images. A PNG or JPEG only takes a slot (anything
   * else goes to POST /images, which says what is wrong with it). Should the store not answer the browser
   * at all (its bucket without a CORS rule for this page, say), the file goes through POST /images, and so
   * do the next ones.
   */
  async upload(
    workloadId: string,
    file: File,
    onProgress: (fraction: number) => void,
  ): Promise<{ image_id: string; via: UploadVia }> {
    const type = (await this.uploadSlots()) ? await slotType(file) : null;
    if (type) {
      try {
        return { image_id: await this.uploadThroughSlot(workloadId, file, type, onProgress), via: 'slot' };
      } catch (error) {
        if (!(error instanceof StoreUnreachable)) throw error;
        this.slots = Promise.resolve(false);
        console.warn(`uploads go through the server from now on: ${error.message}`);
        onProgress(0);
      }
    }
    return { image_id: await this.uploadThroughApi(workloadId, file, onProgress), via: 'api' };
  }

  private uploadSlots(): Promise<boolean> {
    if (!this.slots) {
      const asked = this.json<ServerStatus>('GET', '/status').then((status) => status.uploads?.slots === true);
      asked.catch(() => {
        if (this.slots === asked) this.slots = null;
      });
      this.slots = asked;
    }
    return this.slots;
  }

  /** POST /uploads, the PUT of the file to the slot's URL (exactly its headers, no token), the confirm. */
  private async uploadThroughSlot(
    workloadId: string,
    file: File,
    type: string,
    onProgress: (fraction: number) => void,
  ): Promise<string> {
    const slot = await this.json<UploadSlot>('POST', '/uploads', {
      workload_id: workloadId,
      content_type: type,
      bytes: file.size,
    });
    await new Promise<void>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(slot.upload.method, slot.upload.url);
      for (const [name, value] of Object.entries(slot.upload.headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      // the URL is a credential until it expires: never part of a message
      xhr.onerror = () => reject(new StoreUnreachable('the object store did not answer the upload'));
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        const code = /<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(xhr.responseText)?.[1];
        reject(
          new ApiError(xhr.status, `the object store refused the upload: ${xhr.status} ${code ?? xhr.statusText}`),
        );
      };
      xhr.send(file);
    });
    const confirmed = await this.json<{ image_id: string }>('POST', slot.confirm);
    return confirmed.image_id;
  }

  /** POST /images with progress (fetch cannot report upload progress; XMLHttpRequest can). */
  private uploadThroughApi(workloadId: string, file: File, onProgress: (fraction: number) => void): Promise<string> {
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
        if (xhr.status === 201 && body.image_id) return resolve(body.image_id);
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
