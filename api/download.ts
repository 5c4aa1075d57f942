import { closeSync, fstatSync, read as readCallback, readSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ServerResponse } from 'node:http';
import { openIfThere } from '../common/local-files.js';
import type { OpenedObject } from '../controller/index.js';

const read = promisify(readCallback);
const CHUNK_BYTES = 1024 * 1024;
/**
 * Files up to this size are opened and read synchronously, in one go: from the page cache that takes
 * microseconds, where open, stat, read and close through the thread pool cost four round trips.
 */
const SMALL_FILE_BYTES = CHUNK_BYTES;
const POOLED_BUFFERS = 8;
/**
 * Read buffers are reused from one download to the next: a fresh buffer per chunk made the
 * garbage collector the largest cost of serving images.
 */
const pool: Buffer[] = [];

/** Resolves once the socket has taken the chunk (the buffer is free again); false if the response closed first. */
function write(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    const onClose = (): void => resolve(false);
    res.once('close', onClose);
    res.write(chunk, (error) => {
      res.off('close', onClose);
      resolve(!error);
    });
  });
}

/**
 * Answers with the file's bytes and these headers (Content-Length added), or returns false when the
 * file is missing. The length is that of the file opened, so a file replaced meanwhile is sent
 * whole, old or new, never one with the other's length.
 */
export async function sendFile(res: ServerResponse, file: string, headers: Record<string, string>): Promise<boolean> {
  const fd = openIfThere(file);
  if (fd === null) return false;
  let buffer: Buffer | undefined;
  try {
    const { size } = fstatSync(fd);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader('Content-Length', size);
    if (size <= SMALL_FILE_BYTES) {
      const whole = Buffer.allocUnsafe(size);
      const bytesRead = size > 0 ? readSync(fd, whole, 0, size, 0) : 0;
      // the file shrank under us: end short, so the client sees a body shorter than announced
      if (bytesRead < size) res.destroy();
      else res.end(whole);
      return true;
    }
    buffer = pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    let position = 0;
    while (position < size) {
      const { bytesRead } = await read(fd, buffer, 0, Math.min(CHUNK_BYTES, size - position), position);
      // the file shrank under us: end short, so the client sees a body shorter than announced
      if (bytesRead === 0) {
        res.destroy();
        return true;
      }
      position += bytesRead;
      if (!(await write(res, buffer.subarray(0, bytesRead)))) {
        // the client went away: the socket may still hold the chunk, so the buffer is not reused
        buffer = undefined;
        return true;
      }
    }
    res.end();
    return true;
  } finally {
    closeSync(fd);
    if (buffer && pool.length < POOLED_BUFFERS) pool.push(buffer);
  }
}

/**
 * Answers with an object's bytes from the image store, streamed, or returns false when it is missing.
 * A stream that fails half-way cuts the connection: the client sees a body shorter than announced.
 */
export async function sendStream(
  res: ServerResponse,
  object: OpenedObject | null,
  headers: Record<string, string>,
): Promise<boolean> {
  if (!object) return false;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Content-Length', object.size);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      object.body.destroy();
      resolve();
    };
    object.body.once('error', () => {
      res.destroy();
      done();
    });
    res.once('close', done);
    object.body.pipe(res);
  });
  return true;
}
