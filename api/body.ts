import express, { type RequestHandler } from 'express';
import multer from 'multer';
import { multipartErrors } from './upload.js';

/** A body of fields in any form a client may send: JSON, urlencoded, or multipart without files. */
export function fieldBody(maxBodyBytes: number, filesRefused: string): RequestHandler[] {
  return [
    express.json({ limit: maxBodyBytes }),
    express.urlencoded({ extended: false, limit: maxBodyBytes }),
    multipartErrors(multer({ limits: { files: 0, fields: 20, fieldSize: 4096 } }).none(), filesRefused),
  ];
}
