import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { ImageStoreConfigError, ImageStoreUnavailable } from './errors.js';
import { isNoSuchKey, isTransient, probeProblem, storeFailure } from './s3-errors.js';
import { ObjectPresigner } from './s3-presign.js';
import { RangedGet } from './s3-ranged-get.js';
import type { ImageStore, IncomingContent, OpenedObject, PresignedUrl, StoredObject } from './types.js';

/** Where the images are in S3-compatible object storage. Credentials are the AWS SDK's default chain's. */
export interface S3StoreConfig {
  bucket: string;
  /** The keys' common prefix: '' (the whole bucket is the store's), or 'a/b' (no leading or trailing slash). */
  prefix: string;
  /** An S3-compatible store's URL (MinIO, Ceph, s3rver); null for AWS S3 itself. */
  endpoint: string | null;
  region: string;
  /** Bucket in the path (http://host/bucket/key) rather than in the host name: what most S3-compatibles need. */
  forcePathStyle: boolean;
  /** A local folder where uploads are streamed before they go up. */
  stagingDir: string;
}

/** A store that is down fails a call within seconds: 3 s to connect, 30 s to answer, 3 attempts. */
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 30_000;
const ATTEMPTS = 3;
/** A connection with nothing going either way for this long is dropped (with an error). */
const IDLE_TIMEOUT_MS = 120_000;
/** An upload's time allowance on top of REQUEST_TIMEOUT_MS: it is given at least 1 MiB/s. */
const UPLOAD_BYTES_PER_MS = 1_048_576 / 1000;
/** How long S3 lets a presigned URL live at most: 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** The presigned GET of an inspection is used at once. */
const INSPECT_URL_SECONDS = 60;
/** Keys one DeleteObjects may name. */
const DELETE_BATCH = 1000;

/**
 * The SDK's own warnings (a failed streaming upload it cannot retry, sockets in short supply) would go to
 * the console; its errors are thrown and told by the store's own errors.
 */
const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function checkConfig(config: S3StoreConfig): void {
  if (!config.bucket) throw new ImageStoreConfigError('the S3 image store needs a bucket name');
  if (config.prefix !== '' && !/^[^/]+(\/[^/]+)*$/.test(config.prefix)) {
    throw new ImageStoreConfigError(
      `the S3 key prefix "${config.prefix}" must be empty, or parts joined by single slashes with none at either end`,
    );
  }
  if (config.endpoint !== null && !URL.canParse(config.endpoint)) {
    throw new ImageStoreConfigError(`the S3 endpoint "${config.endpoint}" is not a URL (e.g. http://127.0.0.1:9000)`);
  }
}

/** The first `limit` bytes of a stream; the rest is not read (the stream is destroyed). */
async function readAtMost(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= limit) break;
  }
  body.destroy();
  return Buffer.concat(chunks).subarray(0, limit);
}

function bodyOf(response: GetObjectCommandOutput): Readable {
  const body = response.Body;
  if (!(body instanceof Readable)) throw new Error('the S3 client gave an object body that is not a Node stream');
  return body;
}

function sizeOf(contentLength: number | undefined): number {
  if (contentLength === undefined) throw new Error('the S3 store answered without a Content-Length');
  return contentLength;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The S3 client of a store: credentials from the SDK's default chain only; timeouts and few attempts, so
 * that a store that is down fails a call within seconds, not minutes.
 */
export function createS3Client(config: S3StoreConfig): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint ?? undefined,
    forcePathStyle: config.forcePathStyle,
    // the default flexible checksums (an aws-chunked body with a trailing CRC) are not understood by
    // s3rver and several S3-compatibles; a presigned PUT would also be bound to the checksum of no body
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: ATTEMPTS,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      // a body that stops flowing fails too, but not as soon: a download paused by a slow reader is idle
      socketTimeout: IDLE_TIMEOUT_MS,
      // downloads stream from the store to clients as slowly as the clients read: more than the default 50
      httpAgent: { keepAlive: true, maxSockets: 256 },
      httpsAgent: { keepAlive: true, maxSockets: 256 },
    },
    logger: SILENT,
  });
}

/**
 * The images as objects of an S3 bucket (or an S3-compatible store), at `<prefix>/<workload name>/<file>`.
 * Folders are only key prefixes. Uploads are staged on the local disk, then put whole (a staged file is
 * streamed, never read into memory). Clients and workers can be handed presigned URLs to move the bytes
 * themselves. A store that is down, slow, busy or refusing fails a call within seconds with an
 * ImageStoreUnavailable; what is missing is null where the interface says so.
 */
export class S3ImageStore implements ImageStore {
  readonly kind = 's3';
  readonly presigns = true;
  private readonly client: S3Client;
  private readonly presigner: ObjectPresigner;
  private readonly ranged: RangedGet;
  /** '' or the prefix and a slash: what every key of the store starts with. */
  private readonly root: string;
  private readonly stagingDir: string;

  constructor(private readonly config: S3StoreConfig) {
    checkConfig(config);
    this.root = config.prefix === '' ? '' : `${config.prefix}/`;
    this.stagingDir = path.resolve(config.stagingDir);
    this.client = createS3Client(config);
    this.presigner = new ObjectPresigner(this.client, config.bucket);
    this.ranged = new RangedGet(CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
  }

  get where(): string {
    const at = this.config.endpoint === null ? '' : ` at ${this.config.endpoint}`;
    return `s3://${this.config.bucket}${this.config.prefix === '' ? '' : `/${this.config.prefix}`}${at}`;
  }

  /** Closes the client's idle connections (for a clean exit). */
  destroy(): void {
    this.client.destroy();
    this.ranged.destroy();
  }

  /** Puts, reads back and deletes a probe object under the prefix; any failure says what is wrong. */
  async check(): Promise<void> {
    try {
      await mkdir(this.stagingDir, { recursive: true });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ImageStoreConfigError(`cannot make the S3 store's staging folder ${this.stagingDir}: ${reason}`);
    }
    const { bucket } = this.config;
    const key = this.objectKey(`.probe-${randomUUID()}`);
    const probe = Buffer.from(`DPIP probe ${new Date().toISOString()}`);
    let step = 'putting';
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: probe, ContentLength: probe.length }),
      );
      step = 'reading back';
      const read = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = await readAtMost(bodyOf(read), probe.length + 1);
      if (!bytes.equals(probe)) {
        throw new ImageStoreConfigError(
          `the S3 image store ${this.where} gave back other bytes than were put in probe object ${key}`,
        );
      }
      step = 'deleting';
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      if (error instanceof ImageStoreConfigError) throw error;
      // a probe that was put goes, unless the store is out of reach (then that is the problem to report)
      if (step !== 'putting' && !isTransient(error)) {
        await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {});
      }
      throw new ImageStoreConfigError(
        `S3 image store ${this.where}: ${probeProblem(error, this.config)} (${step} probe object ${key})`,
      );
    }
  }

  /**
   * At start: empties the staging folder, and removes every object under the prefix no record points at
   * (by key, the prefix taken off), those of the folders of no workload with them; but not an object
   * younger than `graceMs` (by its LastModified, whole seconds), which an upload slot or a worker may have
   * just put. Folders are key prefixes: there are none to make. With an empty prefix the whole bucket is
   * the store's. Returns how many objects were removed.
   */
  async prepare(referenced: ReadonlySet<string>, _folders: ReadonlySet<string>, graceMs: number): Promise<number> {
    await rm(this.stagingDir, { recursive: true, force: true });
    await mkdir(this.stagingDir, { recursive: true });
    const youngerThan = Date.now() - graceMs;
    let removed = 0;
    for await (const page of this.list(this.root, 'listing the images')) {
      const unreferenced: string[] = [];
      for (const object of page) {
        if (object.Key === undefined || referenced.has(object.Key.slice(this.root.length))) continue;
        // of an object of unknown age, nothing is known: it stays
        if (graceMs > 0 && (object.LastModified?.getTime() ?? Number.POSITIVE_INFINITY) > youngerThan) continue;
        unreferenced.push(object.Key);
      }
      await this.removeObjects(unreferenced, 'removing images no record points at');
      removed += unreferenced.length;
    }
    return removed;
  }

  /** A fresh path to stream an upload to before `put` keeps it. */
  stagingPath(): string {
    return path.join(this.stagingDir, randomUUID());
  }

  /** Removes a staged upload that was not kept (refused, or failed); a kept one is already gone. */
  async discardStaged(staged: string): Promise<void> {
    if (path.dirname(path.resolve(staged)) !== this.stagingDir) return;
    await unlink(staged).catch(() => undefined);
  }

  /**
   * Puts the bytes at `key`. A staged file is streamed up (with its length: never read whole) and then
   * removed, whether the put succeeded or failed: either way it is consumed, and the caller's
   * discardStaged finds nothing left. A stream cannot be replayed by the SDK's retries, so a staged put
   * is tried again here, from the file, on a transient failure.
   */
  async put(content: IncomingContent, key: string, mime: string): Promise<void> {
    const what = `putting ${key}`;
    const target = { Bucket: this.config.bucket, Key: this.objectKey(key), ContentType: mime };
    if (content.kind === 'memory') {
      const { data } = content;
      await this.request(what, () =>
        this.client.send(new PutObjectCommand({ ...target, Body: data, ContentLength: data.length })),
      );
      return;
    }
    try {
      const { size } = await stat(content.path);
      const requestTimeout = REQUEST_TIMEOUT_MS + Math.ceil(size / UPLOAD_BYTES_PER_MS);
      for (let attempt = 1; ; attempt++) {
        const body = createReadStream(content.path);
        try {
          await this.client.send(new PutObjectCommand({ ...target, Body: body, ContentLength: size }), {
            requestTimeout,
          });
          return;
        } catch (error) {
          body.destroy();
          if (attempt >= ATTEMPTS || !isTransient(error)) storeFailure(what, error);
          await delay(100 * 2 ** attempt);
        }
      }
    } finally {
      await rm(content.path, { force: true });
    }
  }

  async open(key: string): Promise<OpenedObject | null> {
    const response = await this.requestOrNull(`reading ${key}`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) })),
    );
    if (!response) return null;
    return { size: sizeOf(response.ContentLength), body: bodyOf(response) };
  }

  /**
   * The size and first `headBytes` bytes of the object: a HEAD when no bytes are asked, else one ranged
   * GET, whose Content-Range gives the whole size. An empty object has no byte 0: S3 answers 416.
   */
  async inspect(key: string, headBytes: number): Promise<StoredObject | null> {
    const what = `inspecting ${key}`;
    if (headBytes <= 0) {
      const object = { Bucket: this.config.bucket, Key: this.objectKey(key) };
      const head = await this.requestOrNull(what, () => this.client.send(new HeadObjectCommand(object)));
      return head ? { size: sizeOf(head.ContentLength), head: Buffer.alloc(0) } : null;
    }
    const { url } = await this.presign('GET', key, INSPECT_URL_SECONDS);
    return this.ranged.head(url, headBytes, what);
  }

  async remove(key: string): Promise<void> {
    // S3 answers the DELETE of a missing key with success
    await this.requestOrNull(`removing ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: this.objectKey(key) })),
    );
  }

  /** Nothing to make: a folder is a key prefix. */
  async makeFolder(_name: string): Promise<void> {}

  /** Every object under `<prefix>/<name>/` (the slash: folder w1 is not w10). */
  async removeFolder(name: string): Promise<void> {
    const what = `removing folder ${name}`;
    for await (const page of this.list(this.objectKey(`${name}/`), what)) {
      const keys = page.flatMap((object) => (object.Key === undefined ? [] : [object.Key]));
      await this.removeObjects(keys, what);
    }
  }

  /** Nothing to remove: a folder is a key prefix, gone with its last object. */
  async removeFolderIfEmpty(_name: string): Promise<void> {}

  async settle(_key: string): Promise<void> {}

  localPath(_key: string): null {
    return null;
  }

  /** No folder a worker could share: workers move bytes by presigned URL. */
  folderId(): Promise<null> {
    return Promise.resolve(null);
  }

  /**
   * A URL good for one GET, or for one PUT of `mime` (a signed header: the upload must carry exactly that
   * Content-Type) and, given `bytes`, of exactly that many bytes (a signed Content-Length: S3 refuses any other
   * body), of this key, for `expiresInSeconds` (1 s to 7 days, S3's limit). `expiresAt` is when S3 stops taking
   * it: counted from the signing time in whole seconds, as S3 counts it.
   */
  async presign(
    method: 'GET' | 'PUT',
    key: string,
    expiresInSeconds: number,
    mime?: string,
    bytes?: number,
  ): Promise<PresignedUrl> {
    if (method === 'PUT' && !mime) throw new Error('a presigned PUT needs the Content-Type it will carry');
    if (!Number.isFinite(expiresInSeconds)) throw new Error(`a presigned URL cannot expire in ${expiresInSeconds} s`);
    if (bytes !== undefined && (method !== 'PUT' || !Number.isSafeInteger(bytes) || bytes < 0))
      throw new Error(`only a presigned PUT is bound to a length, a whole number of bytes (not ${bytes})`);
    const expiresIn = Math.min(MAX_PRESIGN_SECONDS, Math.max(1, Math.floor(expiresInSeconds)));
    const signedAt = Math.floor(Date.now() / 1000) * 1000;
    const put = method === 'PUT' ? mime : undefined;
    const url = await this.request(`presigning ${method} ${key}`, () =>
      this.presigner.presign({
        method,
        key: this.objectKey(key),
        expiresIn,
        mime: put,
        ...(bytes === undefined ? {} : { bytes }),
        signingDate: new Date(signedAt),
      }),
    );
    return {
      url,
      method,
      expiresAt: signedAt + expiresIn * 1000,
      headers: put === undefined ? {} : { 'content-type': put },
    };
  }

  private objectKey(key: string): string {
    return this.root + key;
  }

  /** The objects under `prefix`, a page (up to 1,000) at a time. */
  private async *list(prefix: string, what: string): AsyncGenerator<_Object[]> {
    let token: string | undefined;
    do {
      const page = await this.request(what, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: prefix, ContinuationToken: token }),
        ),
      );
      yield page.Contents ?? [];
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async removeObjects(keys: readonly string[], what: string): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const answer = await this.request(what, () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.config.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      const failed = (answer.Errors ?? []).filter((error) => error.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new ImageStoreUnavailable(
          what,
          new Error(
            `${failed.length} of ${batch.length} objects not removed: ${first.Key}: ${first.Code} ${first.Message}`,
          ),
        );
      }
    }
  }

  /** The call's result; a failure of the store is an ImageStoreUnavailable saying what was being done. */
  private async request<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      return storeFailure(what, error);
    }
  }

  /** As request, with null when there is no such key. */
  private async requestOrNull<T>(what: string, call: () => Promise<T>): Promise<T | null> {
    try {
      return await call();
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      return storeFailure(what, error);
    }
  }
}
