import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';
import multer from 'multer';
import { AppError } from '../common/errors.js';
import { multipartErrors } from './upload.js';

const FIELD_TYPES = ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'];

/** True if the request carries body bytes (a declared length above 0, or a chunked body). */
export function hasContent(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(req.headers['content-length'] ?? 0);
  return !Number.isNaN(length) && length > 0;
}

/**
 * 413 at once for a body whose declared length is over `limit`, and the connection is closed after
 * the answer: the body is never read (body-parser would read it all, to throw it away, first).
 */
export function refuseDeclaredOver(limit: number, what: string): RequestHandler {
  return (req, res, next) => {
    checkDeclaredLength(req, res, limit, what);
    next();
  };
}

/** The check of refuseDeclaredOver, for a request answered on node:http directly. */
export function checkDeclaredLength(req: IncomingMessage, res: ServerResponse, limit: number, what: string): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    res.setHeader('Connection', 'close');
    throw new AppError('too_large', `${what} is larger than the limit of ${limit} bytes`);
  }
}

/**
 * A body of fields in any form a client may send: JSON, urlencoded, or multipart without files. No
 * body at all is fine (every route has defaults or says what is missing); a body of another type is
 * 415 instead of being ignored, and a JSON body must be an object.
 */
export function fieldBody(maxBodyBytes: number, filesRefused: string): RequestHandler[] {
  return [
    refuseDeclaredOver(maxBodyBytes, 'the request body'),
    (req, _res, next) => {
      if (hasContent(req) && !req.is(FIELD_TYPES)) {
        const type = req.get('content-type');
        throw new AppError(
          'unsupported_media_type',
          `${type ? `unsupported content type "${type.slice(0, 100)}"` : 'a body without a content type'}: ` +
            'send JSON (application/json), a form (application/x-www-form-urlencoded) or multipart/form-data',
        );
      }
      next();
    },
    express.json({ limit: maxBodyBytes }),
    express.urlencoded({ extended: false, limit: maxBodyBytes, parameterLimit: 100 }),
    multipartErrors(multer({ limits: { files: 0, fields: 20, fieldSize: 4096, parts: 20 } }).none(), filesRefused),
    (req, _res, next) => {
      if (req.body !== undefined && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
        throw new AppError(
          'bad_request',
          'the body must be an object of fields (a JSON object or a form), not a list or a bare value',
        );
      }
      next();
    },
  ];
}

/**
 * A field of a parsed body, own properties only: `__proto__`, `constructor` and the like are read as
 * fields the client sent (or not), never from a prototype.
 */
export function bodyField(body: unknown, key: string): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  return Object.hasOwn(body, key) ? (body as Record<string, unknown>)[key] : undefined;
}
