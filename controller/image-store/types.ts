import type { Readable } from 'node:stream';

/** An upload's bytes: in memory, or already on disk at a staging path the store gave out (see stagingPath()). */
export type IncomingContent = { kind: 'memory'; data: Buffer } | { kind: 'staged'; path: string };

/** What a stored object is, read without fetching it whole: for checking what a worker or a client put. */
export interface StoredObject {
  size: number;
  /** Its first bytes (at most the `headBytes` asked for): enough for the image header. */
  head: Buffer;
}

/** An object opened for reading: its size, and its bytes as a stream. */
export interface OpenedObject {
  size: number;
  body: Readable;
}

/** The one method and the one key a presigned URL is good for, until it expires. */
export interface PresignedUrl {
  url: string;
  method: 'GET' | 'PUT';
  /** Epoch ms. */
  expiresAt: number;
  /** Headers the client must send with it (a PUT's Content-Type is part of what is signed). */
  headers: Record<string, string>;
}

/**
 * Where image bytes live, by key (`<workload_name>/<file name>`, the record's `file`). Two
 * implementations: a local folder and S3-compatible object storage; nothing outside this folder knows
 * which. A failure of the store itself (unreachable, refusing, timing out) is an ImageStoreUnavailable.
 */
export interface ImageStore {
  readonly kind: 'local' | 's3';
  /** Where the bytes are, for logs and /status: "folder /srv/images", "s3://bucket/prefix". */
  readonly where: string;
  /** Whether a client or a worker can be handed presigned URLs to move bytes without the server. */
  readonly presigns: boolean;

  /** At start: writes, reads and deletes a probe; throws an error naming the problem. */
  check(): Promise<void>;
  /**
   * At start: empties the staging area, removes the objects no record points at (`referenced`, by key)
   * and the folders of no workload (`folders`, by name), and makes the folders that are missing.
   * Objects younger than `graceMs` are left alone: an upload slot or a worker may be writing them.
   * Returns how many objects were removed.
   */
  prepare(referenced: ReadonlySet<string>, folders: ReadonlySet<string>, graceMs: number): Promise<number>;

  /** A fresh local path to stream an upload to before `put` keeps it (on the local disk, whatever the store). */
  stagingPath(): string;
  /** Removes a staged upload that was not kept (refused, or failed); a kept one is already gone. */
  discardStaged(staged: string): Promise<void>;

  /** Puts the bytes at `key`, a fresh key, durably; a staged file is consumed. On failure nothing is at `key`. */
  put(content: IncomingContent, key: string, mime: string): Promise<void>;
  /** The object's bytes, or null when there is none at `key`. */
  open(key: string): Promise<OpenedObject | null>;
  /** The object's size and first bytes, or null when there is none at `key`. */
  inspect(key: string, headBytes: number): Promise<StoredObject | null>;
  /**
   * Makes an object another process put at `key` (a worker, by path or presigned URL) as durable as `put` makes
   * the store's own: a folder syncs the key's directory entry (syncs asked together shared); an object store has
   * nothing to do, its answered PUT already is.
   */
  settle(key: string): Promise<void>;
  /** Removes the object (no error when there is none). */
  remove(key: string): Promise<void>;

  /** A new workload's folder, made durably (a no-op where folders are only key prefixes). */
  makeFolder(name: string): Promise<void>;
  /** A deleted workload's folder, with whatever is in it. */
  removeFolder(name: string): Promise<void>;
  /** The folder of a workload that no longer exists, if nothing is in it any more. */
  removeFolderIfEmpty(name: string): Promise<void>;

  /** The object's path on this machine's disk, for readers and writers that share it; null when it has none. */
  localPath(key: string): string | null;
  /**
   * The identity of the folder that workers seeing it may read and write by path (the content of its
   * STORE_ID_FILE, made on first use); null for a store that has no such folder.
   */
  folderId(): Promise<string | null>;
  /**
   * A presigned GET (download) or PUT (upload of `mime`) for this one key, good for `expiresInSeconds`. A PUT given
   * `bytes` takes a body of exactly that length and no other (its Content-Length is signed). Only where `presigns`;
   * throws otherwise.
   */
  presign(
    method: 'GET' | 'PUT',
    key: string,
    expiresInSeconds: number,
    mime?: string,
    bytes?: number,
  ): Promise<PresignedUrl>;
}
