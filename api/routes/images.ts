import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Router, type RequestHandler } from 'express';
import { AppError } from '../../common/errors.js';
import { findWorkload, type Controller, type ImageRecord } from '../../controller/index.js';
import { callerOf, requireToken } from '../auth.js';
import { bodyField, refuseDeclaredOver } from '../body.js';
import type { ApiConfig } from '../config.js';
import { inspectImage, singleFileUpload, uploadedFile } from '../upload.js';

function field(body: unknown, key: string): string | undefined {
  const value = bodyField(body, key);
  return typeof value === 'string' && value !== '' ? value : undefined;
}


// large reads: an image goes out in a few syscalls instead of one per 64 KiB (reads showed in profiles)
const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;
export function imageRoutes(controller: Controller, config: ApiConfig): Router {
  const router = Router();
  const token = requireToken(controller.tokens);

  const multipartOnly: RequestHandler = (req, _res, next) => {
    if (!req.is('multipart/form-data')) {
      throw new AppError('bad_request', 'send the image as multipart/form-data: the file (field "data") and "workload_id"');
    }
    next();
  };

  // the file plus room for the other fields (20 of at most 4 KiB) and the multipart framing
  const declaredLimit = refuseDeclaredOver(config.maxUploadBytes + 128 * 1024, 'the upload');

  router.post('/images', token, multipartOnly, declaredLimit, singleFileUpload(config.maxUploadBytes), async (req, res) => {
    const { claims } = callerOf(res);
    const type = field(req.body, 'type') ?? 'original';
    if (type !== 'original' && type !== 'filtered') throw new AppError('bad_request', `"type" must be "original" or "filtered", not "${type.slice(0, 64)}"`);
    const workloadId = field(req.body, 'workload_id');
    let record: ImageRecord;
    if (claims.scope === 'user') {
      if (type !== 'original') throw new AppError('forbidden', 'filtered images are uploaded by workers; upload originals');
      if (!workloadId) throw new AppError('bad_request', 'missing "workload_id"');
      const workload = findWorkload(controller.store, claims.sub, workloadId);
      const image = inspectImage(uploadedFile(req.files), config.maxPixels);
      record = await controller.images.addOriginal(workload, image);
    } else {
      const jobId = field(req.body, 'job_id');
      const leaseId = field(req.body, 'lease_id');
      if (type !== 'filtered' || !jobId || !leaseId) throw new AppError('forbidden', 'a worker uploads only filtered images, with "job_id" and "lease_id"');
      const image = inspectImage(uploadedFile(req.files), config.maxPixels);
      record = await controller.images.addFiltered(jobId, claims.sub, leaseId, image);
    }
    res.status(201).json({ workload_id: record.workload_id, image_id: record.id, type: record.type, source_image_id: record.source_image_id });
  });

  router.get('/images/:id', token, async (req, res) => {
    const { claims } = callerOf(res);
    const id = String(req.params.id);
    const image = claims.scope === 'user' ? controller.images.find(claims.sub, id) : controller.images.findForWorker(claims.sub, id);
    const path = controller.images.pathOf(image);
    const info = await stat(path).catch(() => null);
    if (!info) throw new AppError('not_found', `the file of image "${id}" is missing`);
    res.set({ 'Content-Type': image.mime, 'Content-Length': String(info.size), 'Cache-Control': 'private, max-age=0' });
    await new Promise<void>((resolve, reject) => {
      const stream = createReadStream(path, { highWaterMark: DOWNLOAD_CHUNK_BYTES });
      stream.on('error', reject);
      res.on('close', () => {
        // a client that went away mid-download leaves the stream paused, not ended: close its file
        stream.destroy();
        resolve();
      });
      stream.pipe(res);
    });
  });

  return router;
}
