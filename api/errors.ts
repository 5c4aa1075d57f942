import type { ErrorRequestHandler, RequestHandler } from 'express';
import multer from 'multer';
import { AppError, type ErrorKind } from '../common/errors.js';
import type { Logger } from '../common/log.js';

const STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  too_many_requests: 429,
  unavailable: 503,
};

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

/** Every error leaves as JSON {error: {code, message}} with its status; nothing leaks a stack. */
export function errorHandler(log: Logger, maxUploadBytes: number): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    let appError: AppError;
    if (error instanceof AppError) appError = error;
    else if (error instanceof multer.MulterError) appError = fromMulter(error, maxUploadBytes);
    else if (isHttpError(error)) {
      const kind: ErrorKind = error.status === 413 ? 'too_large' : error.status === 415 ? 'unsupported_media_type' : 'bad_request';
      appError = new AppError(kind, error.type === 'entity.parse.failed' ? 'the request body is not valid JSON' : error.message);
    } else {
      log.error({ error: error instanceof Error ? error.stack : String(error) }, 'unexpected error');
      res.status(500).json({ error: { code: 500, message: 'internal error' } });
      return;
    }
    const status = STATUS[appError.kind];
    res.status(status).json({ error: { code: status, message: appError.message } });
  };
}

function isHttpError(error: unknown): error is { status: number; message: string; type?: string } {
  return typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' && error.status >= 400 && error.status < 500;
}
