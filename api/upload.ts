import { unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import { imageSize } from 'image-size';
import { AppError } from '../common/errors.js';
import { chainGeometry } from '../common/operations/index.js';
import { chainOf, type ImageContent, type ImageMime, type IncomingImage, type Workload } from '../controller/index.js';
import { StagingSink } from './staging-sink.js';

const MIME_OF: Record<string, ImageMime> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};

/** What a user may upload as an original (every engine decodes them), and what a worker's result may be. */
const ORIGINAL_MIMES: ReadonlySet<ImageMime> = new Set(['image/png', 'image/jpeg']);

/**
 * multer hands busboy's parse errors ("Multipart: Boundary not found", "Unexpected end of form",
 * "Malformed part header") on as plain Errors, which would leave as 500: they are the client's
 * fault, so they become 400. multer's own limit errors keep their mapping in errors.ts, unless
 * `fileRefused` is given: then a file part is refused with that message.
 */
export function multipartErrors(middleware: RequestHandler, fileRefused?: string): RequestHandler {
  return (req, res, next) => {
    middleware(req, res, (error?: unknown) => {
      if (error === undefined || error === null || typeof error === 'string' || error instanceof AppError)
        return next(error);
      if (error instanceof multer.MulterError) {
        const isFileError = error.code === 'LIMIT_FILE_COUNT' || error.code === 'LIMIT_UNEXPECTED_FILE';
        return next(fileRefused && isFileError ? new AppError('bad_request', fileRefused) : error);
      }
      next(
        new AppError(
          'bad_request',
          `malformed multipart body: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    });
  };
}

// uploads up to this size stay in memory; it is also enough for any PNG header, and for a JPEG's
// frame header behind large EXIF/ICC segments
const IN_MEMORY_BYTES = 512 * 1024;
/**
 * What is read first of an image put in the store by its sender, to check it: enough for nearly every
 * header (a PNG's is in its first 33 bytes, a camera JPEG's frame header within a few KiB); only an image
 * whose header lies further (behind large EXIF or ICC segments) is read again, up to IN_MEMORY_BYTES.
 */
export const STORED_HEAD_BYTES = 16 * 1024;

/**
 * A multipart file: in memory when small, else streamed to a staging path; its first bytes are kept
 * for the header check.
 */
export interface StagedFile {
  size: number;
  head: Buffer;
  content: ImageContent;
}

/**
 * Streams each file as it arrives into a StagingSink: an upload is never held in memory whole
 * unless it is small, and keeping a large one later is a rename.
 */
class StagingStorage implements multer.StorageEngine {
  /** By staging path: multer hands the route a new file object, not the one _handleFile saw. */
  private readonly sinks = new Map<string, StagingSink>();
  /** The check of a request's fields that come before its file (see SingleFileUpload.receive). */
  readonly beforeFile = new WeakMap<Request, (fields: unknown) => void>();

  constructor(private readonly stagingPath: () => string) {}

  _handleFile(
    req: Request,
    file: Express.Multer.File,
    callback: (error?: unknown, info?: Partial<Express.Multer.File>) => void,
  ): void {
    try {
      // the fields that came before the file are in req.body: a refusal now reads nothing of the file
      this.beforeFile.get(req)?.(req.body);
    } catch (error) {
      callback(error);
      return;
    }
    const sink = new StagingSink(this.stagingPath(), IN_MEMORY_BYTES);
    pipeInto(file.stream, sink).then(
      () => {
        this.sinks.set(sink.path, sink);
        callback(null, { path: sink.path, size: sink.size });
      },
      (error: unknown) => callback(error),
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File, callback: (error: Error | null) => void): void {
    const sink = this.sinks.get(file.path);
    this.sinks.delete(file.path);
    if (sink?.data) {
      callback(null);
      return;
    }
    unlink(file.path).then(
      () => callback(null),
      () => callback(null),
    );
  }

  staged(file: Express.Multer.File): StagedFile {
    const sink = this.sinks.get(file.path);
    this.sinks.delete(file.path);
    if (!sink) throw new Error(`no upload staged at ${file.path}`);
    return stagedFrom(sink);
  }
}

function stagedFrom(sink: StagingSink): StagedFile {
  const data = sink.data;
  return {
    size: sink.size,
    head: sink.head,
    content: data ? { kind: 'memory', data } : { kind: 'staged', path: sink.path },
  };
}

/** Content types of a request whose whole body is the image (the bytes decide the format, as for multipart files). */
export const RAW_IMAGE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/avif',
  'application/octet-stream',
]);

/**
 * An image sent as the whole request body, streamed into a StagingSink as a multipart file is. A
 * body over `maxBytes` (declared, or counted as it arrives when chunked) is 413, the connection
 * closes, and nothing of it stays.
 */
export async function receiveRawImage(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
  stagingPath: string,
): Promise<StagedFile> {
  const sink = new StagingSink(stagingPath, IN_MEMORY_BYTES, maxBytes);
  try {
    await pipeInto(req, sink);
  } catch (error) {
    // the rest of the body is never read: the connection cannot carry another request
    if (error instanceof AppError && error.kind === 'too_large') res.setHeader('Connection', 'close');
    throw error;
  }
  return stagedFrom(sink);
}

/**
 * source.pipe(sink), settled when the sink has everything or either side fails. Not
 * stream.pipeline: on Node 20 it builds an AbortError, stack trace included, at every clean finish.
 */
function pipeInto(source: Readable, sink: StagingSink): Promise<void> {
  return new Promise((resolve, reject) => {
    source.once('error', (error) => sink.destroy(error));
    sink.once('error', reject);
    sink.once('finish', resolve);
    source.pipe(sink);
  });
}

export interface SingleFileUpload {
  middleware: RequestHandler;
  /** The request's one file, if it sent one. */
  stagedFile(req: Request): StagedFile | undefined;
  /**
   * Parses a multipart request answered on node:http: its fields and its file, if any. `beforeFile`
   * sees the fields that came before the file, before a byte of the file is read; what it throws
   * settles the promise at once (the rest of the body is never read: the answer closes the connection).
   */
  receive(
    req: IncomingMessage,
    res: ServerResponse,
    beforeFile?: (fields: unknown) => void,
  ): Promise<{ body: unknown; staged: StagedFile | undefined }>;
}

/** Multipart with exactly one file, in any field (the course clients use "data"), streamed to a staging path. */
export function singleFileUpload(maxUploadBytes: number, stagingPath: () => string): SingleFileUpload {
  const storage = new StagingStorage(stagingPath);
  const middleware = multipartErrors(
    multer({
      storage,
      limits: { fileSize: maxUploadBytes, files: 1, fields: 20, fieldSize: 4096, parts: 24 },
    }).any(),
  );
  const stagedFile = (req: Request): StagedFile | undefined => {
    const file = Array.isArray(req.files) ? req.files[0] : undefined;
    return file ? storage.staged(file) : undefined;
  };
  return {
    middleware,
    stagedFile,
    receive(req, res, beforeFile) {
      // multer works on node's request and response; its types name express's, which only add to them
      const expressReq = req as unknown as Request;
      return new Promise((resolve, reject) => {
        let settled = false;
        if (beforeFile) {
          storage.beforeFile.set(expressReq, (fields) => {
            try {
              beforeFile(fields);
            } catch (error) {
              // multer would read the whole body before it reports the error: answer now, and close
              res.setHeader('Connection', 'close');
              settled = true;
              reject(error instanceof Error ? error : new Error(String(error)));
              throw error;
            }
          });
        }
        middleware(expressReq, res as unknown as Response, (error?: unknown) => {
          if (settled) return;
          settled = true;
          if (error) reject(error instanceof Error ? error : new Error(String(error)));
          else resolve({ body: expressReq.body, staged: stagedFile(expressReq) });
        });
      });
    },
  };
}

export function requireFile(file: StagedFile | undefined): StagedFile {
  if (!file) throw new AppError('bad_request', 'no file: send the image as multipart/form-data in field "data"');
  return file;
}

/**
 * Reads the format and dimensions from the header only (nothing is decoded), so a tiny file
 * claiming 20000x20000 pixels is refused without allocating its bitmap.
 */
export function inspectImage(
  file: StagedFile,
  maxPixels: number,
  kind: 'original' | 'result' = 'original',
): IncomingImage {
  if (file.size === 0) throw new AppError('bad_request', 'the file is empty');
  let header: { type?: string; width?: number; height?: number; orientation?: number };
  try {
    header = imageSize(file.head);
  } catch {
    throw new AppError('unsupported_media_type', 'the file is not a PNG or JPEG image');
  }
  const mime = header.type && Object.hasOwn(MIME_OF, header.type) ? MIME_OF[header.type] : undefined;
  if (!mime || (kind === 'original' && !ORIGINAL_MIMES.has(mime)))
    throw new AppError(
      'unsupported_media_type',
      `unsupported image type "${header.type ?? 'unknown'}": send PNG or JPEG`,
    );
  const { width, height } = header;
  if (!width || !height) throw new AppError('unprocessable', 'the image header has no dimensions');
  if (width * height > maxPixels) {
    throw new AppError(
      'unprocessable',
      `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`,
    );
  }
  // EXIF orientations 5 to 8 turn the image a quarter: the engines read it turned
  const turned = header.orientation !== undefined && header.orientation >= 5 && header.orientation <= 8;
  return { content: file.content, bytes: file.size, mime, width, height, turned };
}

/** 422 unless the workload's chain applies to this original: a crop inside it, every step within the pixel cap. */
export function checkChainFits(workload: Workload, original: IncomingImage, maxPixels: number): void {
  const upright = original.turned ? { width: original.height, height: original.width } : original;
  const geometry = chainGeometry(chainOf(workload), upright, maxPixels);
  if (!geometry.ok)
    throw new AppError('unprocessable', `this image cannot go through the workload's chain: ${geometry.error}`);
}

/**
 * inspectImage for an image already in the store at `key`, of which `first` holds the first
 * STORED_HEAD_BYTES: read again, up to 512 KiB, only when its header was not in them.
 */
export async function inspectStoredImage(
  readHead: (bytes: number) => Promise<{ size: number; head: Buffer } | null>,
  key: string,
  first: { size: number; head: Buffer },
  maxPixels: number,
  kind: 'original' | 'result',
): Promise<IncomingImage> {
  const content = { kind: 'stored' as const, key };
  try {
    return inspectImage({ ...first, content }, maxPixels, kind);
  } catch (error) {
    if (first.head.length >= first.size || first.head.length >= IN_MEMORY_BYTES) throw error;
    const longer = await readHead(IN_MEMORY_BYTES);
    if (!longer) throw error;
    return inspectImage({ ...longer, content }, maxPixels, kind);
  }
}
