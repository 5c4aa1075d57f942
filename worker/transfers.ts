// Where a job's bytes come from and where its result goes: through the API, by path in the server's images
// folder (a worker that sees it), or straight to the object store with a presigned URL. A presigned URL is a
// credential for its key: it never appears in an error message, nor in a log line.
import http from 'node:http';
import path from 'node:path';
import { readLocalFile, writeDurably } from '../common/local-files.js';
import type { Assignment, JobTarget } from '../common/protocol.js';
import type { ApiClient } from './api-client.js';
import type { FilterResult } from './engines/index.js';
import { DEFAULT_HTTP_TIMEOUTS, httpCall, HttpTimeoutError, type HttpReply, type HttpTimeouts } from './http-call.js';

export interface TransferOptions {
  /** The server's images folder as this worker sees it (--images-dir); null: it has none. */
  imagesDir: string | null;
  /** The time limits of a presigned transfer: those of the calls to the API (--http-timeout, ...). */
  timeouts: HttpTimeouts;
}

/** A worker that sees no images folder; presigned transfers within the default time limits. */
export const API_ONLY_TRANSFERS: TransferOptions = { imagesDir: null, timeouts: DEFAULT_HTTP_TIMEOUTS };

/** A target the worker puts the result at itself, then reports with `stored=true`. */
export type DirectTarget = Exclude<JobTarget, { via: 'api' }>;

/**
 * A presigned transfer that failed. `storeUnavailable`: the object store could not be reached, timed out,
 * or answered 5xx or 429 (not the job's fault); false for what the store refused (a 403: the URL expired
 * or is wrong), which is a failure of this attempt only.
 */
export class StoreTransferError extends Error {
  override name = 'StoreTransferError';
  constructor(
    message: string,
    readonly storeUnavailable: boolean,
  ) {
    super(message);
  }
}

/**
 * The file of `key` in the images folder. Keys are `<workload>/<file>` (the protocol's schema refuses any
 * other), and the path is checked again here: it must be a file of a folder right under the images folder.
 */
export function keyPath(imagesDir: string, key: string): string {
  const root = path.resolve(imagesDir);
  const file = path.resolve(root, key);
  const parts = path.relative(root, file).split(path.sep);
  if (parts.length !== 2 || parts.some((part) => part === '' || part === '.' || part === '..'))
    throw new Error(`the key "${key}" is not a file in a workload's folder`);
  return file;
}

/** Why a result cannot go to its target, or null when it can: its type must be the one the target was made for. */
export function targetMismatch(target: DirectTarget, result: FilterResult): string | null {
  if (result.mime === target.mime) return null;
  return `the result is ${result.mime}, but its target (by ${target.via}) is for ${target.mime}: nothing was stored`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The original of the job: from the API, from the images folder, or from the object store. */
export async function readOriginal(
  job: Assignment,
  api: ApiClient,
  options: TransferOptions,
  signal: AbortSignal,
): Promise<Buffer> {
  const source = job.source ?? { via: 'api' };
  if (source.via === 'api') return api.download(job.image_id, signal);
  if (source.via === 'path') {
    const what = `read of image ${job.image_id} from the images folder`;
    const file = keyPath(folderFor(options, what), source.key);
    try {
      return await readLocalFile(file, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new Error(`${what} failed: ${messageOf(error)}`);
    }
  }
  const what = `download of image ${job.image_id} from the object store`;
  const reply = await storeCall(source, 'GET', source.headers ?? {}, [], options, signal, what);
  if (reply.status !== 200) throw statusError(what, reply.status);
  return reply.body;
}

/** Puts the result at its target: into the images folder, durably, or to the object store. */
export async function storeResult(
  job: Assignment,
  target: DirectTarget,
  result: FilterResult,
  options: TransferOptions,
  signal: AbortSignal,
): Promise<void> {
  if (target.via === 'path') {
    const what = `write of the result of job ${job.job_id} to the images folder`;
    return writeResultFile(keyPath(folderFor(options, what), target.key), result.data, signal, what);
  }
  const what = `upload of the result of job ${job.job_id} to the object store`;
  // exactly the headers that were signed with the URL (its Content-Type), and the length
  const headers: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(target.headers ?? {}))
    if (name.toLowerCase() !== 'content-length') headers[name] = value;
  headers['content-length'] = result.data.length;
  const reply = await storeCall(target, 'PUT', headers, [result.data], options, signal, what);
  if (reply.status !== 200) throw statusError(what, reply.status);
}

/** The images folder, for a job sent to this worker by path: one it lacks is a failure of this attempt only. */
function folderFor(options: TransferOptions, what: string): string {
  if (options.imagesDir === null)
    throw new Error(`${what} is not possible: this worker was started without an images folder (--images-dir)`);
  return options.imagesDir;
}

/**
 * Puts the result at `file` in the images folder, whole or not at all, its data synced (see writeDurably). The
 * server syncs the folder before it takes the result, one sync for every file that arrived meanwhile.
 */
async function writeResultFile(file: string, data: Buffer, signal: AbortSignal, what: string): Promise<void> {
  try {
    await writeDurably(file, data, { signal, syncFolder: false });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new Error(`${what} failed: ${messageOf(error)}`);
  }
}

/** A store's answer other than the one expected: 5xx and 429 say the store is unavailable, 4xx that it refused. */
function statusError(what: string, status: number): StoreTransferError {
  // the body is not quoted: an S3 error can carry the signed request (its canonical query string)
  const text = http.STATUS_CODES[status];
  return new StoreTransferError(
    `${what} failed: HTTP ${status}${text ? ` ${text}` : ''}`,
    status >= 500 || status === 429,
  );
}

/** A call to a presigned URL, whose failures say what failed and never the URL. */
async function storeCall(
  presigned: { url: string; headers?: Record<string, string> | undefined },
  method: 'GET' | 'PUT',
  headers: Record<string, string | number>,
  parts: Buffer[],
  options: TransferOptions,
  signal: AbortSignal,
  what: string,
): Promise<HttpReply> {
  let url: URL;
  try {
    url = new URL(presigned.url);
  } catch {
    throw new StoreTransferError(`${what} failed: its URL is not valid`, false);
  }
  try {
    return await httpCall({ url, method, headers, parts, signal, timeouts: options.timeouts, what });
  } catch (error) {
    if (signal.aborted) throw error;
    const secrets = secretsOf(url, presigned.headers ?? {});
    const message = error instanceof HttpTimeoutError ? error.message : `${what} failed: ${messageOf(error)}`;
    throw new StoreTransferError(redact(message, secrets), true);
  }
}

/** The parts of a presigned request that must not be shown: the URL, its query, its values, its signed headers. */
function secretsOf(url: URL, headers: Record<string, string>): string[] {
  const query = url.search.slice(1);
  const values = [
    ...query.split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)),
    ...url.searchParams.values(),
    ...Object.values(headers),
  ].filter((value) => value.length >= 16);
  const secrets = [url.href, presignedNoHash(url), `${url.pathname}${url.search}`, query, ...values];
  // the longest first, so that a shorter secret inside a longer one does not break up its replacement
  return secrets.filter((secret) => secret.length > 1).sort((a, b) => b.length - a.length);
}

function presignedNoHash(url: URL): string {
  return `${url.origin}${url.pathname}${url.search}`;
}

function redact(text: string, secrets: readonly string[]): string {
  let shown = text;
  for (const secret of secrets) shown = shown.split(secret).join('[presigned URL]');
  return shown;
}
