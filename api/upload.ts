import type { RequestHandler } from 'express';
import multer from 'multer';
import { imageSize } from 'image-size';
import { AppError } from '../common/errors.js';
import type { ImageMime, IncomingImage } from '../controller/index.js';

const MIME_OF: Record<string, ImageMime> = { png: 'image/png', jpg: 'image/jpeg' };

/**
 * multer hands busboy's parse errors ("Multipart: Boundary not found", "Unexpected end of form",
 * "Malformed part header") on as plain Errors, which would leave as 500: they are the client's
 * fault, so they become 400. multer's own limit errors keep their mapping in errors.ts, unless
 * `fileRefused` is given: then a file part is refused with that message.
 */
export function multipartErrors(middleware: RequestHandler, fileRefused?: string): RequestHandler {
  return (req, res, next) => {
    middleware(req, res, (error?: unknown) => {
      if (error === undefined || error === null || typeof error === 'string' || error instanceof AppError) return next(error);
      if (error instanceof multer.MulterError) {
        const isFileError = error.code === 'LIMIT_FILE_COUNT' || error.code === 'LIMIT_UNEXPECTED_FILE';
        return next(fileRefused && isFileError ? new AppError('bad_request', fileRefused) : error);
      }
      next(new AppError('bad_request', `malformed multipart body: ${error instanceof Error ? error.message : String(error)}`));
    });
  };
}

/** Multipart with exactly one file, in any field (the course clients use "data"). */
export function singleFileUpload(maxUploadBytes: number): RequestHandler {
  return multipartErrors(
    multer({
      storage: multer.memoryStorage(),
      limits: { fileSize: maxUploadBytes, files: 1, fields: 20, fieldSize: 4096, parts: 24 },
    }).any(),
  );
}

export function uploadedFile(files: unknown): Express.Multer.File {
  const list = Array.isArray(files) ? (files as Express.Multer.File[]) : [];
  if (list.length === 0) throw new AppError('bad_request', 'no file: send the image as multipart/form-data in field "data"');
  return list[0]!;
}

/**
 * Reads the format and dimensions from the header only (nothing is decoded), so a tiny file
 * claiming 20000x20000 pixels is refused without allocating its bitmap.
 */
export function inspectImage(file: Express.Multer.File, maxPixels: number): IncomingImage {
  if (file.size === 0) throw new AppError('bad_request', 'the file is empty');
  let header: { type?: string; width?: number; height?: number };
  try {
    header = imageSize(file.buffer);
  } catch {
    throw new AppError('unsupported_media_type', 'the file is not a PNG or JPEG image');
  }
  const mime = header.type ? MIME_OF[header.type] : undefined;
  if (!mime) throw new AppError('unsupported_media_type', `unsupported image type "${header.type ?? 'unknown'}": send PNG or JPEG`);
  const { width, height } = header;
  if (!width || !height) throw new AppError('unprocessable', 'the image header has no dimensions');
  if (width * height > maxPixels) {
    throw new AppError('unprocessable', `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  return { data: file.buffer, mime, width, height };
}
