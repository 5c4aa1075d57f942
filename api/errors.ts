import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import multer from 'multer';
import { AppError, diskFullError, isDiskFull, type ErrorKind } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { requestLogger } from './request-log.js';

const STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  too_many_requests: 429,
  insufficient_storage: 507,
  unavailable: 503,
};

/** 429 with a Retry-After header: the caller may try again in `retryAfterSeconds`. */
export class TooManyRequests extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('too_many_requests', message);
  }
}

export const notFound: RequestHandler = (req) => {
  throw new AppError('not_found', `no route for ${req.method} ${req.path}`);
};

function fromMulter(error: multer.MulterError, maxUploadBytes: number): AppError {
  switch (error.code) {
    case 'LIMIT_FILE_SIZE':
      return new AppError('too_large', `the file is larger than the limit of ${maxUploadBytes} bytes`);
    case 'LIMIT_FILE_COUNT':
    case 'LIMIT_UNEXPECTED_FILE':
      return new AppError('bad_request', 'send exactly one file (multipart field "data")');
    default:
      return new AppError('bad_request', `malformed multipart body: ${error.message}`);
  }
}

/** The client's error for what went wrong, or null for an unexpected one (a bug: 500, logged). */
function clientErrorOf(error: unknown, maxUploadBytes: number): AppError | null {
  if (error instanceof AppError) return error;
  if (isDiskFull(error)) return diskFullError();
  if (error instanceof multer.MulterError) return fromMulter(error, maxUploadBytes);
  if (isHttpError(error)) {
    const kind: ErrorKind =
      error.status === 413 ? 'too_large' : error.status === 415 ? 'unsupported_media_type' : 'bad_request';
    return new AppError(kind, httpErrorMessage(error));
  }
  return null;
}

/**
 * Every error leaves as JSON {error: {code, message}} with its status; nothing leaks a stack. For
 * express's error handler and the image routes, which answer on node:http directly.
 */
export function answerError(error: unknown, res: ServerResponse, log: Logger, maxUploadBytes: number): void {
  if (res.headersSent) {
    // a download that failed half-way: the status is gone, only cutting the connection tells the client
    log.warn(
      { error: error instanceof Error ? error.message : String(error) },
      'response failed after its headers were sent',
    );
    res.destroy();
    return;
  }
  const { status, body, retryAfterSeconds } = errorAnswer(error, log, maxUploadBytes);
  if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(retryAfterSeconds));
  answerJson(res, status, body);
}

/**
 * The JSON error {error: {code, message}} and status an error answers with (one of a batch's items, say), and
 * when to try again for a 429 that says.
 */
export function errorAnswer(
  error: unknown,
  log: Logger,
  maxUploadBytes: number,
): { status: number; body: { error: { code: number; message: string } }; retryAfterSeconds?: number } {
  const clientError = clientErrorOf(error, maxUploadBytes);
  if (!clientError) log.error({ error: error instanceof Error ? error.stack : String(error) }, 'unexpected error');
  const status = clientError ? STATUS[clientError.kind] : 500;
  const body = { error: { code: status, message: clientError ? clientError.message : 'internal error' } };
  return clientError instanceof TooManyRequests
    ? { status, body, retryAfterSeconds: clientError.retryAfterSeconds }
    : { status, body };
}

/** A JSON answer written straight to node's response, as express's res.json() writes it. */
export function answerJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export function errorHandler(baseLog: Logger, maxUploadBytes: number): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => answerError(error, res, requestLogger(res, baseLog), maxUploadBytes);
}

/** body-parser's errors, in words a client can act on. */
function httpErrorMessage(error: { status: number; message: string; type?: string; limit?: unknown }): string {
  switch (error.type) {
    case 'entity.parse.failed':
      return 'the request body is not valid JSON: send an object of fields';
    case 'entity.too.large':
      return typeof error.limit === 'number'
        ? `the request body is larger than the limit of ${error.limit} bytes`
        : 'the request body is too large';
    case 'parameters.too.many':
      return 'the form has too many fields';
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return `${error.message}: send UTF-8, without a content encoding or with gzip, deflate or br`;
    default:
      return error.message;
  }
}

function isHttpError(error: unknown): error is { status: number; message: string; type?: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'status' in error &&
    typeof error.status === 'number' &&
    error.status >= 400 &&
    error.status < 500
  );
}
