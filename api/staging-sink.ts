import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { AppError } from '../common/errors.js';

// while one write to the file is in flight, the stream gathers what arrives into one writev
const BATCH_BYTES = 1024 * 1024;

/**
 * Where an upload's bytes go as they arrive: memory while the upload is small (the common case
 * costs no staging file at all), a file at `path` once it outgrows `inMemoryBytes`. File writes
 * are batched, a handful of system calls per megabyte rather than one per network chunk.
 */
export class StagingSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private handle: FileHandle | null = null;
  private spilled = false;
  /** The first bytes (all of them while in memory), for reading the image header. */
  head = Buffer.alloc(0);
  size = 0;

  constructor(
    readonly path: string,
    private readonly inMemoryBytes: number,
    /** More than this fails the sink with a 413 error (multer enforces its own limit on multipart files). */
    private readonly maxBytes = Infinity,
  ) {
    super({ highWaterMark: BATCH_BYTES });
  }

  /** The whole upload when it stayed in memory; undefined when it went to the file at `path`. */
  get data(): Buffer | undefined {
    return this.spilled ? undefined : this.head;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  override _writev(entries: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const buffers = entries.map((entry) => entry.chunk);
    const bytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    this.size += bytes;
    if (this.size > this.maxBytes) {
      callback(new AppError('too_large', `the file is larger than the limit of ${this.maxBytes} bytes`));
      return;
    }
    if (!this.spilled && this.size <= this.inMemoryBytes) {
      // copies: a multipart parser may hand out views into a buffer it reuses
      for (const buffer of buffers) this.chunks.push(Buffer.from(buffer));
      callback();
      return;
    }
    this.spill(buffers).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.spilled) this.head = Buffer.concat(this.chunks, this.size);
    this.chunks.length = 0;
    const handle = this.handle;
    this.handle = null;
    if (!handle) {
      callback();
      return;
    }
    handle.close().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    const cleanup = async (): Promise<void> => {
      await handle?.close().catch(() => undefined);
      // destroyed after a clean finish (autoDestroy), the file is the upload: it stays
      if (this.spilled && (error || !this.writableFinished)) await unlink(this.path).catch(() => undefined);
    };
    cleanup().then(() => callback(error));
  }

  private async spill(buffers: Buffer[]): Promise<void> {
    if (!this.spilled) {
      this.spilled = true;
      this.head = Buffer.concat(this.chunks);
      buffers.unshift(...this.chunks);
      this.chunks.length = 0;
      const handle = await open(this.path, 'wx');
      if (this.destroyed) {
        // the upload was abandoned while the file opened: _destroy has run and left this to us
        await handle.close();
        await unlink(this.path).catch(() => undefined);
        throw new Error('the upload was abandoned');
      }
      this.handle = handle;
    }
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle!.writev(pending);
      pending = dropBytes(pending, bytesWritten);
    }
  }
}

/** What is left of `buffers` after its first `count` bytes (a short write leaves a remainder). */
function dropBytes(buffers: Buffer[], count: number): Buffer[] {
  let left = count;
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (left >= buffer.length) {
      left -= buffer.length;
      continue;
    }
    rest.push(left > 0 ? buffer.subarray(left) : buffer);
    left = 0;
  }
  return rest;
}
