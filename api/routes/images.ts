import { Router, type RequestHandler } from 'express';
import { AppError } from '../../common/errors.js';
import { findWorkload, type Controller, type ImageRecord, type TokenClaims } from '../../controller/index.js';
import { callerOf, requireToken } from '../auth.js';
import { bodyField, refuseDeclaredOver } from '../body.js';
import type { ApiConfig } from '../config.js';
import { sendFile } from '../download.js';
import { inspectImage, requireFile, singleFileUpload, type StagedFile } from '../upload.js';

function field(body: unknown, key: string): string | undefined {
  const value = bodyField(body, key);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

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

  const upload = singleFileUpload(config.maxUploadBytes, () => controller.images.stagingPath());

  router.post('/images', token, multipartOnly, declaredLimit, upload.middleware, async (req, res) => {
    const staged = upload.stagedFile(req);
    let record: ImageRecord;
    try {
      record = await keepUpload(req.body, callerOf(res).claims, staged);
    } catch (error) {
      // refused or failed: a staged file goes (a kept one was renamed away already)
      if (staged?.content.kind === 'staged') await controller.images.discardStaged(staged.content.path);
      throw error;
    }
    res.status(201).json({ workload_id: record.workload_id, image_id: record.id, type: record.type, source_image_id: record.source_image_id });
  });

  async function keepUpload(body: unknown, claims: TokenClaims, staged: StagedFile | undefined): Promise<ImageRecord> {
    const type = field(body, 'type') ?? 'original';
    if (type !== 'original' && type !== 'filtered') throw new AppError('bad_request', `"type" must be "original" or "filtered", not "${type.slice(0, 64)}"`);
    const workloadId = field(body, 'workload_id');
    if (claims.scope === 'user') {
      if (type !== 'original') throw new AppError('forbidden', 'filtered images are uploaded by workers; upload originals');
      if (!workloadId) throw new AppError('bad_request', 'missing "workload_id"');
      const workload = findWorkload(controller.store, claims.sub, workloadId);
      return controller.images.addOriginal(workload, inspectImage(requireFile(staged), config.maxPixels));
    }
    const jobId = field(body, 'job_id');
    const leaseId = field(body, 'lease_id');
    if (type !== 'filtered' || !jobId || !leaseId) throw new AppError('forbidden', 'a worker uploads only filtered images, with "job_id" and "lease_id"');
    return controller.images.addFiltered(jobId, claims.sub, leaseId, inspectImage(requireFile(staged), config.maxPixels));
  }

  router.get('/images/:id', token, async (req, res) => {
    const { claims } = callerOf(res);
    const id = String(req.params.id);
    const image = claims.scope === 'user' ? controller.images.find(claims.sub, id) : controller.images.findForWorker(claims.sub, id);
    const path = controller.images.pathOf(image);
    if (!(await sendFile(res, path, { 'Content-Type': image.mime, 'Cache-Control': 'private, max-age=0' }))) {
      throw new AppError('not_found', `the file of image "${id}" is missing`);
    }
  });

  return router;
}
