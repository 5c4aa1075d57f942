import type { ClientRequest } from 'node:http';

/** How a request fails on a connection the other end had closed: reset, or ended before any answer. */
const DROPPED_CODES = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Whether the request failed on a kept-alive connection that the other end closed (idle, at a time of its own)
 * just as the request went out on it: nothing was answered, and the request may go again on another connection.
 */
export function droppedKeptConnection(request: ClientRequest, error: NodeJS.ErrnoException): boolean {
  return request.reusedSocket && DROPPED_CODES.has(error.code ?? '');
}
