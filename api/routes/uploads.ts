// Uploads around the server: POST /uploads opens a slot (an image id and a presigned PUT for its key), the
// client puts the bytes in the object store itself, and POST /uploads/{id}/confirm makes it an original with a
// job once the object passed the same checks as an upload through POST /images.
import { Router } from 'express';
import { AppError } from '../../common/errors.js';
import { findWorkload, type Controller, type IncomingImage, type StoredObject } from '../../controller/index.js';
import { callerOf, requireUser } from '../auth.js';
import { bodyField, fieldBody } from '../body.js';
import type { ApiConfig } from '../config.js';
import { checkChainFits, inspectStoredImage, STORED_HEAD_BYTES } from '../upload.js';

const SLOT_TYPES: Record<string, 'image/png' | 'image/jpeg'> = { 'image/png': 'image/png', 'image/jpeg': 'image/jpeg' };

export function uploadRoutes(controller: Controller, config: ApiConfig): Router {
  const router = Router();
  const user = requireUser(controller.tokens);
  const body = fieldBody(config.maxBodyBytes, 'a slot takes fields only: put the image at the URL it answers');

  router.post('/uploads', user, ...body, async (req, res) => {
    const owner = callerOf(res).claims.sub;
    const workloadId = bodyField(req.body, 'workload_id');
    if (typeof workloadId !== 'string' || workloadId === '') throw new AppError('bad_request', 'missing "workload_id"');
    const type = bodyField(req.body, 'content_type');
    const mime = typeof type === 'string' && Object.hasOwn(SLOT_TYPES, type) ? SLOT_TYPES[type]! : undefined;
    if (!mime) throw new AppError('unsupported_media_type', '"content_type" must be "image/png" or "image/jpeg"');
    const bytes = bodyField(req.body, 'bytes');
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1)
      throw new AppError('bad_request', '"bytes" must be the size of the file, a whole number of bytes (1 or more)');
    if (bytes > config.maxUploadBytes)
      throw new AppError('too_large', `the file is larger than the limit of ${config.maxUploadBytes} bytes`);
    const workload = findWorkload(controller.store, owner, workloadId);
    if (workload.cancelled_at)
      throw new AppError('conflict', `workload "${workload.name}" was cancelled: it takes no more images`);
    controller.images.checkRoom(0);
    controller.images.checkQuota(owner, bytes);
    const { slot, put } = await controller.uploads.create(workload, mime, bytes);
    res.status(201).json({
      image_id: slot.id,
      workload_id: workload.id,
      upload: { method: put.method, url: put.url, headers: put.headers, bytes },
      expires_at: new Date(slot.expires_at).toISOString(),
      confirm: `/uploads/${slot.id}/confirm`,
      max_bytes: config.maxUploadBytes,
    });
  });

  router.post('/uploads/:id/confirm', user, async (req, res) => {
    const owner = callerOf(res).claims.sub;
    const slot = controller.uploads.take(owner, String(req.params.id));
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
    let original: IncomingImage;
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
      original = await inspectStoredImage(readHead, slot.key, object, config.maxPixels, 'original');
      if (original.mime !== slot.mime)
        throw new AppError('unsupported_media_type', `the slot is for ${slot.mime}, the object is ${original.mime}`);
      const workload = findWorkload(controller.store, owner, slot.workload_id);
      checkChainFits(workload, original, config.maxPixels);
      controller.uploads.close(slot);
      const record = await controller.images.addOriginal(workload, original, slot.id);
      res.status(201).json({
        workload_id: record.workload_id,
        image_id: record.id,
        type: record.type,
        source_image_id: record.source_image_id,
      });
    } catch (error) {
      // refused: nothing of it is kept (addOriginal removes the object itself when it refuses)
      controller.uploads.close(slot);
      await controller.imageStore.remove(slot.key).catch(() => undefined);
      throw error;
    }
  });
  return router;
}
