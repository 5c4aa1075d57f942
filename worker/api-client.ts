import type { FilterResult } from './engines/index.js';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function failure(response: Response, what: string): Promise<ApiError> {
  let detail = response.statusText;
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    detail = body.error?.message ?? detail;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(`${what}: HTTP ${response.status} ${detail}`, response.status);
}

/** The worker's side of the REST contract: download an original, upload its filtered image. */
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: () => string,
  ) {}

  async download(imageId: string, signal: AbortSignal): Promise<Buffer> {
    const response = await fetch(`${this.baseUrl}/images/${encodeURIComponent(imageId)}`, {
      headers: { authorization: `Bearer ${this.token()}` },
      signal,
    });
    if (!response.ok) throw await failure(response, `download of image ${imageId} failed`);
    return Buffer.from(await response.arrayBuffer());
  }

  async uploadFiltered(workloadId: string, jobId: string, leaseId: string, result: FilterResult, signal: AbortSignal): Promise<string> {
    const form = new FormData();
    form.set('workload_id', workloadId);
    form.set('type', 'filtered');
    form.set('job_id', jobId);
    form.set('lease_id', leaseId);
    const extension = result.mime === 'image/png' ? 'png' : 'jpg';
    form.set('data', new Blob([result.data], { type: result.mime }), `${jobId}.${extension}`);
    const response = await fetch(`${this.baseUrl}/images`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token()}` },
      body: form,
      signal,
    });
    if (!response.ok) throw await failure(response, `upload of job ${jobId} failed`);
    const body = (await response.json()) as { image_id?: unknown };
    if (typeof body.image_id !== 'string') throw new ApiError('upload answered without an image_id', response.status);
    return body.image_id;
  }
}
