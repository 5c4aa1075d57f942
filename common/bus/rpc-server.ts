import {
  JSONRPCErrorCode,
  JSONRPCErrorException,
  JSONRPCServer,
  createJSONRPCErrorResponse,
  type JSONRPCID,
  type JSONRPCRequest,
} from 'json-rpc-2.0';
import type { z } from 'zod';
import { bindOrThrow, closeSocket, openSocket, sendOn } from './sockets.js';

export interface RpcMethod<S extends z.ZodType, R> {
  params: S;
  handle(params: z.infer<S>): R | Promise<R>;
}

export interface RpcServer {
  readonly address: string;
  /** Milliseconds spent so far between taking a message and sending its reply (the socket reads nothing then). */
  busyMs(): number;
  close(): void;
}

export interface ServeOptions {
  /** Larger messages are dropped by nanomsg, with their connection (default MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /**
   * Checked on the raw message before it is parsed: false answers it "unauthorized" unread. It must be cheap
   * (it runs for every message, junk included) and bounded in what it reads.
   */
  admit?: (message: Buffer) => boolean;
}

/** An error a handler throws to answer the caller with a JSON-RPC error of its own code. */
export class RpcError extends JSONRPCErrorException {}
export const RPC_UNAUTHORIZED = -32001;

export function method<S extends z.ZodType, R>(
  params: S,
  handle: (params: z.infer<S>) => R | Promise<R>,
): RpcMethod<S, R> {
  return { params, handle };
}

/**
 * A handler that has not answered by then is answered with an internal error: a REP socket reads
 * nothing more until it has replied, so one stuck handler would silence the socket for every peer.
 */
export const HANDLER_DEADLINE_MS = 10_000;
const MAX_REASON_CHARS = 300;
const MAX_ISSUES = 3;

function clip(text: string, max = MAX_REASON_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is string | number {
  return (typeof value === 'string' && value.length <= 200) || (typeof value === 'number' && Number.isFinite(value));
}

/** The id of a request, read without parsing it: only a short `"id": <number or short string>` near the start. */
function cheapId(message: Buffer): JSONRPCID {
  const match = /"id"\s*:\s*(-?\d{1,15}|"[^"\\]{0,200}")/.exec(message.subarray(0, 512).toString('latin1'));
  if (!match) return null;
  const raw = match[1]!;
  return raw.startsWith('"') ? raw.slice(1, -1) : Number(raw);
}

function errorReply(id: JSONRPCID, code: number, message: string): string {
  return JSON.stringify(createJSONRPCErrorResponse(id, code, message));
}

/** Why a message is not one JSON-RPC 2.0 request with an id, or null if it is one. */
function malformed(payload: unknown): string | null {
  if (Array.isArray(payload)) return 'batch requests are not accepted: send one request per message';
  if (!isRecord(payload)) return 'invalid request: expected a JSON object {"jsonrpc": "2.0", "id", "method", "params"}';
  if (payload.jsonrpc !== '2.0') return 'invalid request: "jsonrpc" must be "2.0"';
  if (typeof payload.method !== 'string') return 'invalid request: "method" must be a string';
  if ('result' in payload || 'error' in payload) return 'invalid request: a request has no "result" or "error"';
  if (!('id' in payload) || payload.id === null) return 'notifications are not accepted: send an id';
  if (!isId(payload.id)) return 'invalid request: "id" must be a string (up to 200 characters) or a number';
  return null;
}

/**
 * JSON-RPC 2.0 over a nanomsg REP socket. A REP socket answers one request at a time, so every
 * message gets exactly one reply (garbage gets a parse error) or the socket would stop receiving.
 * Only single requests with an id are served: batches and notifications are refused unexecuted,
 * since a notification's effect could not be answered and a batch would multiply one message's work.
 * `onBadMessage` hears every refused message (with a short reason); `onInternalError` hears handler
 * failures that are not RpcErrors (the caller only gets "internal error"); without it they go to
 * `onBadMessage` too.
 */
export function serveRpc(
  address: string,
  methods: Record<string, RpcMethod<z.ZodType, unknown>>,
  onBadMessage: (reason: string) => void,
  onInternalError?: (method: string, error: unknown) => void,
  options: ServeOptions = {},
): RpcServer {
  const bad = (reason: string): void => {
    try {
      onBadMessage(clip(reason));
    } catch {
      // a listener's failure must not cost the reply
    }
  };
  const internal = (name: string, error: unknown): void => {
    try {
      if (onInternalError) onInternalError(name, error);
      else bad(`internal error in "${name}": ${error instanceof Error ? error.message : String(error)}`);
    } catch {
      // as above
    }
  };

  // errors are answered to the caller and counted by onBadMessage; the library would print each one
  const server = new JSONRPCServer({ errorListener: () => undefined });
  server.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
    if (error instanceof JSONRPCErrorException)
      return createJSONRPCErrorResponse(id, error.code, clip(error.message, 2000), error.data);
    return createJSONRPCErrorResponse(id, JSONRPCErrorCode.InternalError, 'internal error');
  };
  for (const [name, spec] of Object.entries(methods)) {
    server.addMethod(name, async (raw: unknown) => {
      const parsed = spec.params.safeParse(raw);
      if (!parsed.success) {
        const issues = parsed.error.issues;
        const detail = issues
          .slice(0, MAX_ISSUES)
          .map((issue) => `${issue.path.slice(0, 5).join('.') || 'params'}: ${issue.message}`)
          .join('; ');
        const more = issues.length > MAX_ISSUES ? ` (and ${issues.length - MAX_ISSUES} more)` : '';
        throw new JSONRPCErrorException(
          clip(`invalid params for ${name}: ${detail}${more}`, 1000),
          JSONRPCErrorCode.InvalidParams,
        );
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${HANDLER_DEADLINE_MS} ms`)), HANDLER_DEADLINE_MS);
        timer.unref();
      });
      try {
        return await Promise.race([Promise.resolve().then(() => spec.handle(parsed.data)), deadline]);
      } catch (error) {
        if (!(error instanceof JSONRPCErrorException)) internal(name, error);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    });
  }

  const socket = openSocket('rep', options.maxMessageBytes);
  bindOrThrow(socket, address);
  let busy = 0;
  socket.on('data', (message: Buffer) => {
    const taken = performance.now();
    void answer(message)
      .catch(() => errorReply(null, JSONRPCErrorCode.InternalError, 'internal error'))
      .then((reply) => {
        busy += performance.now() - taken;
        sendOn(socket, reply);
      });
  });

  async function answer(message: Buffer): Promise<string> {
    if (options.admit) {
      let admitted = false;
      try {
        admitted = options.admit(message);
      } catch {
        // a failing check admits nothing
      }
      if (!admitted) {
        bad('no valid worker token: refused unread');
        return errorReply(cheapId(message), RPC_UNAUTHORIZED, 'a valid worker token is required here: register first');
      }
    }
    let payload: unknown;
    try {
      payload = JSON.parse(message.toString('utf8'));
    } catch {
      bad('message is not JSON');
      return errorReply(null, JSONRPCErrorCode.ParseError, 'parse error: message is not JSON');
    }
    const refusal = malformed(payload);
    if (refusal) {
      bad(refusal);
      const id = isRecord(payload) && isId(payload.id) ? payload.id : null;
      return errorReply(id, JSONRPCErrorCode.InvalidRequest, refusal);
    }
    const request = payload as unknown as JSONRPCRequest;
    try {
      const response = await server.receive(request);
      if (response === null) return errorReply(request.id ?? null, JSONRPCErrorCode.InternalError, 'internal error');
      if ('error' in response && response.error && response.error.code !== JSONRPCErrorCode.InternalError) {
        bad(
          response.error.code === JSONRPCErrorCode.MethodNotFound
            ? `unknown method "${clip(request.method, 64)}"`
            : response.error.message,
        );
        if (response.error.code === JSONRPCErrorCode.MethodNotFound) {
          return errorReply(
            response.id,
            JSONRPCErrorCode.MethodNotFound,
            `unknown method "${clip(request.method, 64)}": use one of ${Object.keys(methods).join(', ')}`,
          );
        }
      }
      return JSON.stringify(response);
    } catch (error) {
      internal(request.method, error);
      return errorReply(request.id ?? null, JSONRPCErrorCode.InternalError, 'internal error');
    }
  }

  return {
    address,
    busyMs: () => busy,
    close: () => closeSocket(socket),
  };
}
