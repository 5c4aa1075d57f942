import { open } from 'node:fs/promises';
import type { Response } from 'express';

const CHUNK_BYTES = 1024 * 1024;
const POOLED_BUFFERS = 8;
/**
 * Read buffers are reused from one download to the next: a fresh buffer per chunk made the
 * garbage collector the largest cost of serving images.
 */
const pool: Buffer[] = [];

/** Resolves once the socket has taken the chunk (the buffer is free again); false if the response closed first. */
function write(res: Response, chunk: Buffer): Promise<boolean> {
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
export async function sendFile(res: Response, file: string, headers: Record<string, string>): Promise<boolean> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (!handle) return false;
  let buffer: Buffer | undefined;
  try {
    const { size } = await handle.stat();
    res.set({ ...headers, 'Content-Length': String(size) });
    buffer = pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    let position = 0;
    while (position < size) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK_BYTES, size - position), position);
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
    await handle.close();
    if (buffer && pool.length < POOLED_BUFFERS) pool.push(buffer);
  }
}
