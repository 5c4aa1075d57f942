// POST /images and GET /images/{id}, answered on node:http directly, ahead of express: every job
// crosses them three times, and express's own handling costs more server CPU per request (about
// 0.25 ms on the reference machine) than the rest of a download. Authentication, errors, request
// ids and metrics are the same functions express's routes use.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../../common/errors.js';
import { filteredUploadSchema } from '../../common/protocol.js';
import type { Logger } from '../../common/log.js';
import { findWorkload, type Controller, type ImageRecord, type TokenClaims } from '../../controller/index.js';
import { bearerFrom, verifiedClaims } from '../auth.js';
import { bodyField, checkDeclaredLength, hasContent } from '../body.js';
import type { ApiConfig } from '../config.js';
import { sendFile, sendStream } from '../download.js';
import { answerError, answerJson } from '../errors.js';
import type { HttpMetrics } from '../metrics/index.js';
import { trackRequest } from '../request-log.js';
import { storedResultKeeper } from '../stored-result.js';
import {
  checkChainFits,
  inspectImage,
  RAW_IMAGE_TYPES,
  receiveRawImage,
  requireFile,
  singleFileUpload,
  type StagedFile,
} from '../upload.js';

/** How long the presigned GET of `GET /images/{id}?redirect=1` is good for. */
const REDIRECT_EXPIRY_S = 300;

/** Handles the request and returns true if it is one of these routes; false leaves it to express. */
export type RawRoutes = (req: IncomingMessage, res: ServerResponse) => boolean;

type Match = { route: '/images'; upload: true } | { route: '/images/:id'; upload: false; rawId: string };

// as express matches them: any case, an optional trailing slash, the query string ignored
const UPLOAD_PATH = /^\/images\/?$/i;
const IMAGE_PATH = /^\/images\/([^/]+?)\/?$/i;

function match(method: string | undefined, url: string | undefined): Match | null {
  const path = (url ?? '').split('?', 1)[0]!;
  if (method === 'POST') return UPLOAD_PATH.test(path) ? { route: '/images', upload: true } : null;
  if (method !== 'GET' && method !== 'HEAD') return null;
  const found = IMAGE_PATH.exec(path);
  return found ? { route: '/images/:id', upload: false, rawId: found[1]! } : null;
}

function field(body: unknown, key: string): string | undefined {
  const value = bodyField(body, key);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** The fields of a raw upload, from its query string (own properties only, like a parsed body). */
function queryFields(url: string | undefined): Record<string, string> {
  const query = (url ?? '').split('?', 2)[1] ?? '';
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(query)) if (!(key in fields)) fields[key] = value;
  return fields;
}

export function imageRoutes(controller: Controller, config: ApiConfig, metrics: HttpMetrics, log: Logger): RawRoutes {
  // the file plus room for the other fields (20 of at most 4 KiB) and the multipart framing
  const declaredLimit = config.maxUploadBytes + 128 * 1024;
  const upload = singleFileUpload(config.maxUploadBytes, () => controller.images.stagingPath());
  const keepStoredResult = storedResultKeeper(controller, config);

  /**
   * What can be refused from the fields alone, checked as soon as they are known (before the body of a
   * whole-body upload, before the file of a multipart one whose fields come first): a user's upload
   * into a workload that is not theirs (404, as for one that does not exist). Without it, a 50 MB
   * upload into someone else's workload was read and staged before the answer.
   */
  function checkFields(fields: unknown, claims: TokenClaims): void {
    if (claims.scope !== 'user') return;
    const workloadId = field(fields, 'workload_id');
    if (workloadId) findWorkload(controller.store, claims.sub, workloadId);
  }

  async function keepUpload(body: unknown, claims: TokenClaims, staged: StagedFile | undefined): Promise<ImageRecord> {
    const type = field(body, 'type') ?? 'original';
    if (type !== 'original' && type !== 'filtered')
      throw new AppError('bad_request', `"type" must be "original" or "filtered", not "${type.slice(0, 64)}"`);
    const workloadId = field(body, 'workload_id');
    if (claims.scope === 'user') {
      if (type !== 'original')
        throw new AppError('forbidden', 'filtered images are uploaded by workers; upload originals');
      if (!workloadId) throw new AppError('bad_request', 'missing "workload_id"');
      const workload = findWorkload(controller.store, claims.sub, workloadId);
      const original = inspectImage(requireFile(staged), config.maxPixels);
      checkChainFits(workload, original, config.maxPixels);
      return controller.images.addOriginal(workload, original);
    }
    const fields = filteredUploadSchema.safeParse({
      type,
      job_id: field(body, 'job_id'),
      lease_id: field(body, 'lease_id'),
      stored: field(body, 'stored'),
    });
    if (!fields.success) {
      throw new AppError('forbidden', 'a worker uploads only filtered images, with "job_id" and "lease_id"');
    }
    if (fields.data.stored) {
      if (staged) throw new AppError('bad_request', 'a report of a stored result (stored=true) takes no body');
      return keepStoredResult(fields.data, claims.sub);
    }
    const incoming = inspectImage(requireFile(staged), config.maxPixels, 'result');
    const kept = await controller.images.addFiltered(fields.data, claims.sub, incoming);
    controller.activity.receivedFrom(claims.sub, kept.bytes);
    return kept;
  }

  /** Multipart (the file and the fields), or the image as the whole body with the fields in the query string. */
  async function receive(
    req: IncomingMessage,
    res: ServerResponse,
    claims: TokenClaims,
  ): Promise<{ body: unknown; staged: StagedFile | undefined }> {
    const type = hasContent(req) ? mediaType(req) : 'no body';
    if (type === 'no body' && claims.scope === 'worker') {
      // a worker's report of a result it stored itself: the fields are in the query string, there is no file
      const body = queryFields(req.url);
      if (body.stored === 'true') return { body, staged: undefined };
    }
    if (type === 'multipart/form-data') {
      checkDeclaredLength(req, res, declaredLimit, 'the upload');
      return upload.receive(req, res, (fields) => checkFields(fields, claims));
    }
    if (RAW_IMAGE_TYPES.has(type)) {
      checkDeclaredLength(req, res, config.maxUploadBytes, 'the file');
      const body = queryFields(req.url);
      try {
        checkFields(body, claims);
      } catch (error) {
        // the body is never read: the connection cannot carry another request
        res.setHeader('Connection', 'close');
        throw error;
      }
      return {
        body,
        staged: await receiveRawImage(req, res, config.maxUploadBytes, controller.images.stagingPath()),
      };
    }
    throw new AppError(
      'bad_request',
      'send the image as multipart/form-data (the file in field "data", and "workload_id"), or as the whole body ' +
        '(Content-Type image/png, image/jpeg or application/octet-stream) with ?workload_id= in the URL',
    );
  }

  async function postImage(req: IncomingMessage, res: ServerResponse, claims: TokenClaims): Promise<void> {
    // below the free-space reserve, or past the user's quota, a user's upload is refused before a byte
    // of it is read (a worker's result is not: it completes work already done, and a full disk refuses it anyway)
    if (claims.scope === 'user') {
      const declared = Number(req.headers['content-length']) || 0;
      controller.images.checkRoom(declared);
      // the quota, too: a whole body is the file, so its declared length is the file's size; of a
      // multipart body only that it holds at least a byte is known (the file's size is checked when kept).
      // As for the 507, the connection stays open: node reads what the client still sends and drops it,
      // so that the client, still sending, gets the answer rather than a broken pipe
      const fileBytes = RAW_IMAGE_TYPES.has(hasContent(req) ? mediaType(req) : '') ? declared : 0;
      controller.images.checkQuota(claims.sub, Math.max(1, fileBytes));
    }
    const { body, staged } = await receive(req, res, claims);
    let record: ImageRecord;
    try {
      record = await keepUpload(body, claims, staged);
    } catch (error) {
      // refused or failed: a staged file goes (a kept one was renamed away already)
      if (staged?.content.kind === 'staged') await controller.images.discardStaged(staged.content.path);
      throw error;
    }
    answerJson(res, 201, {
      workload_id: record.workload_id,
      image_id: record.id,
      type: record.type,
      source_image_id: record.source_image_id,
    });
  }

  async function getImage(
    req: IncomingMessage,
    res: ServerResponse,
    claims: TokenClaims,
    rawId: string,
  ): Promise<void> {
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      throw new AppError('bad_request', 'the image id is not valid percent-encoding');
    }
    const image =
      claims.scope === 'user'
        ? controller.images.find(claims.sub, id)
        : controller.images.findForWorker(claims.sub, id);
    if (queryFields(req.url).redirect === '1' && controller.imageStore.presigns) {
      // straight from the store: the client follows a presigned GET for this one object, good a few minutes
      const get = await controller.imageStore.presign('GET', image.file, REDIRECT_EXPIRY_S);
      res.writeHead(302, { Location: get.url, 'Cache-Control': 'private, no-store', 'Content-Length': 0 });
      res.end();
      return;
    }
    const headers = { 'Content-Type': image.mime, 'Cache-Control': 'private, max-age=0' };
    const local = controller.images.localPath(image);
    const sent = local
      ? await sendFile(res, local, headers)
      : await sendStream(res, await controller.images.open(image), headers);
    if (!sent) throw new AppError('not_found', `the file of image "${id}" is missing`);
    if (claims.scope !== 'user') controller.activity.sentTo(claims.sub, image.bytes);
  }

  return (req, res) => {
    const found = match(req.method, req.url);
    if (!found) return false;
    const requestLog = trackRequest(
      log,
      req,
      res,
      () => (req.url ?? '').split('?', 1)[0]!,
      () => found.route,
    );
    metrics.track(req.method ?? 'GET', res, () => found.route);
    const answer = async (): Promise<void> => {
      const claims = verifiedClaims(controller.tokens, bearerFrom(req.headers.authorization));
      if (found.upload) await postImage(req, res, claims);
      else await getImage(req, res, claims, found.rawId);
    };
    answer().catch((error: unknown) => answerError(error, res, requestLog, config.maxUploadBytes));
    return true;
  };
}
