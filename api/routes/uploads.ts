// Uploads around the server: POST /uploads opens a slot (an image id and a presigned PUT for its key), the
// client puts the bytes in the object store itself, and POST /uploads/{id}/confirm makes it an original with a
// job once the object passed the same checks as an upload through POST /images. Both come for many images in
// one request too (`images` in POST /uploads, POST /uploads/confirm): two requests for up to
// MAX_SLOTS_PER_REQUEST images instead of two each, and one commit opens them all.
import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import {
  CommitOutcomeUnknown,
  findWorkload,
  type Controller,
  type ImageRecord,
  type OpenedSlot,
  type SlotRequest,
  type StoredObject,
} from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';
import { bodyField, fieldBody } from '../body.js';
import type { ApiConfig } from '../config.js';
import { eachAtMost } from '../each-at-most.js';
import { errorAnswer } from '../errors.js';
import { requestLogger } from '../request-log.js';
import { checkChainFits, inspectStoredImage, STORED_HEAD_BYTES } from '../upload.js';

const SLOT_TYPES: Record<string, 'image/png' | 'image/jpeg'> = { 'image/png': 'image/png', 'image/jpeg': 'image/jpeg' };

/** Slots one request may open, and confirm. */
const MAX_SLOTS_PER_REQUEST = 100;
/** Objects a batch confirm checks in the store at once. */
const CONFIRMS_AT_ONCE = 8;

/** The type and length a slot is asked for, from the fields of one file; `where` names them in a refusal. */
function slotRequest(fields: unknown, maxBytes: number, where: string): SlotRequest {
  const type = bodyField(fields, 'content_type');
  const mime = typeof type === 'string' && Object.hasOwn(SLOT_TYPES, type) ? SLOT_TYPES[type]! : undefined;
  if (!mime) throw new AppError('unsupported_media_type', `${where}"content_type" must be "image/png" or "image/jpeg"`);
  const bytes = bodyField(fields, 'bytes');
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1)
    throw new AppError(
      'bad_request',
      `${where}"bytes" must be the size of the file, a whole number of bytes (1 or more)`,
    );
  if (bytes > maxBytes)
    throw new AppError('too_large', `${where}the file is larger than the limit of ${maxBytes} bytes`);
  return { mime, bytes };
}

/** The files of a request for many slots (`images`), each checked; a refusal names the first bad one. */
function slotRequests(body: unknown, maxBytes: number): SlotRequest[] {
  const images = bodyField(body, 'images');
  if (!Array.isArray(images) || images.length === 0 || images.length > MAX_SLOTS_PER_REQUEST)
    throw new AppError(
      'bad_request',
      `"images" must be a list of 1 to ${MAX_SLOTS_PER_REQUEST} files, each {"content_type", "bytes"}`,
    );
  for (const field of ['content_type', 'bytes'])
    if (bodyField(body, field) !== undefined)
      throw new AppError('bad_request', `"${field}" goes in each of "images", not beside it`);
  return images.map((fields: unknown, index) => slotRequest(fields, maxBytes, `images[${index}]: `));
}

/** The image ids of a batch confirm: 1 to MAX_SLOTS_PER_REQUEST distinct strings. */
function confirmIds(body: unknown): string[] {
  const ids = bodyField(body, 'image_ids');
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > MAX_SLOTS_PER_REQUEST ||
    !ids.every((id): id is string => typeof id === 'string' && id !== '')
  )
    throw new AppError('bad_request', `"image_ids" must be a list of 1 to ${MAX_SLOTS_PER_REQUEST} slots' image ids`);
  if (new Set(ids).size !== ids.length) throw new AppError('bad_request', '"image_ids" names a slot twice');
  return ids;
}

/** What a slot's client needs: where to put the bytes, until when, and where to confirm. */
function slotAnswer({ slot, put }: OpenedSlot) {
  return {
    image_id: slot.id,
    upload: { method: put.method, url: put.url, headers: put.headers, bytes: slot.bytes },
    expires_at: new Date(slot.expires_at).toISOString(),
    confirm: `/uploads/${slot.id}/confirm`,
  };
}

function originalAnswer(record: ImageRecord) {
  return {
    workload_id: record.workload_id,
    image_id: record.id,
    type: record.type,
    source_image_id: record.source_image_id,
  };
}

export function uploadRoutes(controller: Controller, config: ApiConfig, log: Logger): Router {
  const router = Router();
  const user = requireUser(controller.tokens);
  const body = fieldBody(config.maxBodyBytes, 'a slot takes fields only: put the image at the URL it answers');

  /**
   * The original the object put at the owner's slot `id` becomes, with its job; or why not (an AppError: the
   * same answers for one confirm as for a batch's item). Refused, the object goes; not put yet, the slot stays open.
   */
  async function confirmSlot(owner: string, id: string): Promise<ImageRecord> {
    const slot = controller.uploads.take(owner, id);
    let object: StoredObject | null;
    try {
      object = await controller.imageStore.inspect(slot.key, STORED_HEAD_BYTES);
    } catch (error) {
      controller.uploads.release(slot);
      throw error;
    }
    if (!object) {
      // not put yet (or not finished): the slot stays open, the client may put and confirm again
      controller.uploads.release(slot);
      throw new AppError('conflict', 'nothing was put at this slot yet: PUT the image to its URL first');
    }
    try {
      if (object.size > config.maxUploadBytes)
        throw new AppError('too_large', `the file is larger than the limit of ${config.maxUploadBytes} bytes`);
      // a store that checks signatures refuses such a PUT already; this holds for one that does not
      if (slot.bytes !== undefined && object.size !== slot.bytes)
        throw new AppError(
          'unprocessable',
          `the object is ${object.size} bytes, the slot was opened for ${slot.bytes}`,
        );
      const readHead = (bytes: number) => controller.imageStore.inspect(slot.key, bytes);
      const original = await inspectStoredImage(readHead, slot.key, object, config.maxPixels, 'original');
      if (original.mime !== slot.mime)
        throw new AppError('unsupported_media_type', `the slot is for ${slot.mime}, the object is ${original.mime}`);
      const workload = findWorkload(controller.store, owner, slot.workload_id);
      checkChainFits(workload, original, config.maxPixels);
      controller.uploads.close(slot);
      return await controller.images.addOriginal(workload, original, slot.id);
    } catch (error) {
      // refused: nothing of it is kept (addOriginal removes the object itself when it refuses); a commit that may
      // have been kept may name the object: the start-up sweep of the reload that follows removes it if not
      controller.uploads.close(slot);
      const removal = error instanceof CommitOutcomeUnknown ? null : controller.imageStore.remove(slot.key);
      await removal?.catch(() => undefined);
      throw error;
    }
  }

  router.post('/uploads', user, ...body, async (req, res) => {
    const owner = callerOf(res).claims.sub;
    const workloadId = bodyField(req.body, 'workload_id');
    if (typeof workloadId !== 'string' || workloadId === '') throw new AppError('bad_request', 'missing "workload_id"');
    const many = bodyField(req.body, 'images') !== undefined;
    const files = many
      ? slotRequests(req.body, config.maxUploadBytes)
      : [slotRequest(req.body, config.maxUploadBytes, '')];
    const workload = findWorkload(controller.store, owner, workloadId);
    if (workload.cancelled_at)
      throw new AppError('conflict', `workload "${workload.name}" was cancelled: it takes no more images`);
    controller.images.checkRoom(0);
    controller.images.checkQuota(
      owner,
      files.reduce((sum, file) => sum + file.bytes, 0),
    );
    const opened = await controller.uploads.createMany(workload, files);
    if (many) {
      res
        .status(201)
        .json({ workload_id: workload.id, slots: opened.map(slotAnswer), max_bytes: config.maxUploadBytes });
      return;
    }
    res.status(201).json({ ...slotAnswer(opened[0]!), workload_id: workload.id, max_bytes: config.maxUploadBytes });
  });

  // many slots at once: each answered as its own confirm would be, in the order asked
  router.post('/uploads/confirm', user, ...body, async (req, res) => {
    const owner = callerOf(res).claims.sub;
    const ids = confirmIds(req.body);
    const itemLog = requestLogger(res, log);
    const results = await eachAtMost(ids, CONFIRMS_AT_ONCE, async (id) => {
      try {
        return { ...originalAnswer(await confirmSlot(owner, id)), status: 201 };
      } catch (error) {
        const { status, body: answer } = errorAnswer(error, itemLog, config.maxUploadBytes);
        return { image_id: id, status, ...answer };
      }
    });
    const confirmed = results.filter((result) => result.status === 201).length;
    res.status(200).json({ confirmed, refused: results.length - confirmed, results });
  });

  router.post('/uploads/:id/confirm', user, async (req, res) => {
    const record = await confirmSlot(callerOf(res).claims.sub, String(req.params.id));
    res.status(201).json(originalAnswer(record));
  });
  return router;
}
