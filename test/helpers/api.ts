import { readFile } from 'node:fs/promises';

/** A small client of the REST contract, as a user script would write it. */
export class TestClient {
  constructor(
    readonly url: string,
    public token = '',
  ) {}

  static async login(url: string, user: string, password: string): Promise<TestClient> {
    const response = await fetch(`${url}/login`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    if (!response.ok) throw new Error(`login failed: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { token: string };
    return new TestClient(url, body.token);
  }

  headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }

  async createWorkload(body: Record<string, unknown> = {}): Promise<WorkloadBody> {
    const response = await fetch(`${this.url}/workloads`, {
      method: 'POST',
      headers: { ...this.headers(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status !== 201) throw new Error(`create workload failed: ${response.status} ${await response.text()}`);
    return (await response.json()) as WorkloadBody;
  }

  async workload(id: string): Promise<WorkloadBody> {
    const response = await fetch(`${this.url}/workloads/${id}`, { headers: this.headers() });
    if (!response.ok) throw new Error(`get workload failed: ${response.status} ${await response.text()}`);
    return (await response.json()) as WorkloadBody;
  }

  async upload(
    workloadId: string,
    data: Buffer,
    filename: string,
    mime: string,
  ): Promise<{ status: number; body: UploadBody }> {
    const form = new FormData();
    form.set('workload_id', workloadId);
    form.set('data', new Blob([data], { type: mime }), filename);
    const response = await fetch(`${this.url}/images`, { method: 'POST', headers: this.headers(), body: form });
    return { status: response.status, body: (await response.json()) as UploadBody };
  }

  async uploadFile(workloadId: string, file: string, mime: string): Promise<{ status: number; body: UploadBody }> {
    return this.upload(workloadId, await readFile(file), file.split('/').pop()!, mime);
  }

  async download(imageId: string): Promise<{ status: number; type: string | null; data: Buffer }> {
    const response = await fetch(`${this.url}/images/${imageId}`, { headers: this.headers() });
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      data: Buffer.from(await response.arrayBuffer()),
    };
  }

  /** Any call of the REST contract: its status and its JSON body. */
  async call(method: string, route: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.url}${route}`, { method, headers: this.headers() });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  cancelWorkload(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.call('POST', `/workloads/${id}/cancel`);
  }

  deleteWorkload(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.call('DELETE', `/workloads/${id}`);
  }

  deleteImage(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.call('DELETE', `/images/${id}`);
  }

  async waitForCompletion(workloadId: string, timeoutMs = 60_000): Promise<WorkloadBody> {
    const deadline = Date.now() + timeoutMs;
    let last: WorkloadBody | null = null;
    while (Date.now() < deadline) {
      last = await this.workload(workloadId);
      if (last.status === 'completed') return last;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`workload ${workloadId} did not complete: ${JSON.stringify(last)}`);
  }
}

export interface WorkloadBody {
  workload_id: string;
  workload_name: string;
  filter: string;
  status: 'scheduling' | 'running' | 'completed' | 'cancelled';
  running_jobs: number;
  filtered_images: string[];
  total_images: number;
  queued_jobs: number;
  done_jobs: number;
  failed_jobs: number;
  cancelled_jobs: number;
  cancelled_at: string | null;
  expires_at?: string | null;
  failures: { image_id: string; error: string }[];
}

export interface UploadBody {
  workload_id?: string;
  image_id?: string;
  type?: string;
  error?: { code: number; message: string };
}
