import type { Socket } from 'nanomsg';
import { JSONRPCErrorCode, JSONRPCErrorException, JSONRPCServer, createJSONRPCErrorResponse } from 'json-rpc-2.0';
import type { z } from 'zod';
import { bindOrThrow, closeSocket, openSocket } from './sockets.js';

export interface RpcMethod<S extends z.ZodType, R> {
  params: S;
  handle(params: z.infer<S>): R | Promise<R>;
}

export interface RpcServer {
  readonly address: string;
  close(): void;
}

/** An error a handler throws to answer the caller with a JSON-RPC error of its own code. */
export class RpcError extends JSONRPCErrorException {}
export const RPC_UNAUTHORIZED = -32001;

export function method<S extends z.ZodType, R>(params: S, handle: (params: z.infer<S>) => R | Promise<R>): RpcMethod<S, R> {
  return { params, handle };
}

/**
 * JSON-RPC 2.0 over a nanomsg REP socket. A REP socket answers one request at a time, so every
 * message gets exactly one reply (garbage gets a parse error) or the socket would stop receiving.
 */
export function serveRpc(
  address: string,
  methods: Record<string, RpcMethod<z.ZodType, unknown>>,
  onBadMessage: (reason: string) => void,
): RpcServer {
  // errors are answered to the caller and counted by onBadMessage; the library would print each one
  const server = new JSONRPCServer({ errorListener: () => undefined });
  for (const [name, spec] of Object.entries(methods)) {
    server.addMethod(name, async (raw: unknown) => {
      const parsed = spec.params.safeParse(raw);
      if (!parsed.success) {
        const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'params'}: ${issue.message}`).join('; ');
        throw new JSONRPCErrorException(`invalid params for ${name}: ${detail}`, JSONRPCErrorCode.InvalidParams);
      }
      return spec.handle(parsed.data);
    });
  }
  const socket = openSocket('rep');
  bindOrThrow(socket, address);
  socket.on('data', (message: Buffer) => {
    void answer(message).then((reply) => {
      if (!socket.closed) socket.send(reply);
    });
  });

  async function answer(message: Buffer): Promise<string> {
    let payload: unknown;
    try {
      payload = JSON.parse(message.toString('utf8'));
    } catch {
      onBadMessage('message is not JSON');
      return JSON.stringify(createJSONRPCErrorResponse(null, JSONRPCErrorCode.ParseError, 'parse error: message is not JSON'));
    }
    try {
      const response = await server.receive(payload as Parameters<typeof server.receive>[0]);
      if (response === null) return JSON.stringify(createJSONRPCErrorResponse(null, JSONRPCErrorCode.InvalidRequest, 'notifications are not accepted: send an id'));
      const single = Array.isArray(response) ? response[0] : response;
      if (single && 'error' in single && single.error) onBadMessage(single.error.message);
      return JSON.stringify(response);
    } catch (error) {
      onBadMessage(String(error));
      return JSON.stringify(createJSONRPCErrorResponse(null, JSONRPCErrorCode.InvalidRequest, 'invalid request'));
    }
  }

  return {
    address,
    close: () => closeSocket(socket),
  };
}
