import type { Socket } from 'nanomsg';
import { JSONRPCClient, type JSONRPCRequest, type JSONRPCResponse } from 'json-rpc-2.0';
import type { z } from 'zod';
import { closeSocket, isOpen, openSocket, sendOn } from './sockets.js';

export class RpcCallError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

function isResponse(value: unknown): value is JSONRPCResponse {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const id = 'id' in value ? value.id : undefined;
  if (typeof id !== 'number' && typeof id !== 'string') return false;
  const error = 'error' in value ? value.error : undefined;
  if (error !== undefined)
    return typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string';
  return 'result' in value;
}

export interface RpcClient {
  readonly address: string;
  call<S extends z.ZodType>(method: string, params: unknown, result: S, timeoutMs?: number): Promise<z.infer<S>>;
  close(): void;
}

/**
 * JSON-RPC 2.0 over a nanomsg REQ socket. A REQ socket carries one request at a time (a new
 * request cancels the one in flight), so calls are queued and sent one after another; a call
 * that gets no reply in time fails and the next one goes out.
 */
export function connectRpc(address: string, defaultTimeoutMs = 5000): RpcClient {
  const socket: Socket = openSocket('req');
  socket.connect(address);
  let nextId = 1;
  let tail: Promise<unknown> = Promise.resolve();
  const client = new JSONRPCClient(
    (request: JSONRPCRequest) => {
      if (!sendOn(socket, JSON.stringify(request)))
        throw new RpcCallError(`${request.method}: connection to ${address} is closed`, undefined);
    },
    () => nextId++,
  );
  socket.on('data', (message: Buffer) => {
    // the peer may be anything that answers on that address: only a well-formed reply to a call of
    // ours resolves it; anything else is dropped (and that call times out) instead of throwing here
    let response: unknown;
    try {
      response = JSON.parse(message.toString('utf8'));
    } catch {
      return;
    }
    if (!isResponse(response)) return;
    try {
      client.receive(response);
    } catch {
      // nothing to resolve
    }
  });

  async function send<S extends z.ZodType>(
    method: string,
    params: unknown,
    result: S,
    timeoutMs: number,
  ): Promise<z.infer<S>> {
    if (!isOpen(socket)) throw new RpcCallError(`${method}: connection to ${address} is closed`, undefined);
    const response = await client.timeout(timeoutMs).requestAdvanced({ jsonrpc: '2.0', id: nextId++, method, params });
    if ('error' in response && response.error) {
      throw new RpcCallError(`${method} failed at ${address}: ${response.error.message}`, response.error.code);
    }
    const parsed = result.safeParse('result' in response ? response.result : undefined);
    if (!parsed.success) throw new RpcCallError(`${method}: malformed reply from ${address}`, undefined);
    return parsed.data;
  }

  return {
    address,
    call(method, params, result, timeoutMs = defaultTimeoutMs) {
      const run = tail.then(() => send(method, params, result, timeoutMs));
      tail = run.catch(() => undefined);
      return run;
    },
    close() {
      client.rejectAllPendingRequests('connection closed');
      closeSocket(socket);
    },
  };
}
