import path from 'node:path';
import { Readable } from 'node:stream';
import { Router } from 'express';
import yazl from 'yazl';
import { AppError } from '../../common/errors.js';
import { filteredImages, findWorkload, type Controller } from '../../controller/index.js';
import type { Logger } from '../../common/log.js';
import { callerOf, requireUser, requireUserOrUrlToken, urlTokenAnswer } from '../auth.js';
import { requestLogger } from '../request-log.js';

/**
 * GET /workloads/:id/archive: the workload's filtered images as one ZIP, streamed file by file from
 * disk (never held in memory). Entries are stored, not deflated: PNG and JPEG are compressed already.
 * A plain download link cannot send a header: it carries a short-lived token for this archive, from
 * POST /workloads/:id/archive/token, as ?token=.
 */
export function archiveRoutes(controller: Controller, log: Logger): Router {
  const router = Router();
  router.post('/workloads/:id/archive/token', requireUser(controller.tokens), (req, res) => {
    const { claims } = callerOf(res);
    const workload = findWorkload(controller.store, claims.sub, String(req.params.id));
    res.json(
      urlTokenAnswer(
        controller.tokens.issueForUrl(claims, 'archive', workload.id),
        `/workloads/${encodeURIComponent(workload.id)}/archive`,
      ),
    );
  });
  router.get('/workloads/:id/archive', requireUserOrUrlToken(controller.tokens, 'archive'), async (req, res) => {
    const workload = findWorkload(controller.store, callerOf(res).claims.sub, String(req.params.id));
    const images = filteredImages(controller.store, workload);
    if (images.length === 0) throw new AppError('conflict', `workload "${workload.name}" has no filtered images yet`);
    const entries = await Promise.all(
      images.map(async (image) => {
        const size = await controller.images.sizeOf(image);
        if (size === null) throw new AppError('not_found', `the file of image "${image.id}" is missing`);
        return {
          image,
          size,
          mtime: new Date(image.created_at),
          // named after its original, whatever the file is called on disk (each lease writes its own)
          name: `${workload.name}/${image.source_image_id ?? image.id}.filtered${path.extname(image.file)}`,
        };
      }),
    );

    const zip = new yazl.ZipFile();
    const opened = new Set<Readable>();
    for (const entry of entries) {
      zip.addReadStreamLazy(entry.name, { size: entry.size, mtime: entry.mtime, compress: false }, (done) => {
        controller.images.open(entry.image).then(
          (object) => {
            if (!object) return done(new Error(`the file of image "${entry.image.id}" is gone`), Readable.from([]));
            const stream = object.body;
            // a file that fails half-way (gone, unreadable) fails the archive, not the process
            stream.on('error', (error) => zip.emit('error', error));
            opened.add(stream);
            stream.on('close', () => opened.delete(stream));
            done(null, stream);
          },
          (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), Readable.from([])),
        );
      });
    }
    // every size is known up front, so the archive's length is too: the client can show progress
    let length = -1;
    zip.end(undefined, (...args: unknown[]) => {
      if (typeof args[0] === 'number') length = args[0];
    });
    res.set({
      'Content-Type': 'application/zip',
      'Content-Disposition': `attachment; filename="${workload.name}.zip"`,
      'Cache-Control': 'private, no-store',
    });
    if (length >= 0) res.set('Content-Length', String(length));
    await new Promise<void>((resolve) => {
      const output = zip.outputStream;
      // the status is sent already: cutting the connection is how the client learns the archive is incomplete
      const fail = (error: unknown): void => {
        requestLogger(res, log).warn(
          { workload: workload.id, error: error instanceof Error ? error.message : String(error) },
          'archive failed while it was sent',
        );
        res.destroy();
      };
      zip.on('error', fail);
      output.on('error', fail);
      res.on('close', () => {
        // a client gone mid-download: stop reading and close the file being read
        output.unpipe(res);
        for (const stream of opened) stream.destroy();
        resolve();
      });
      output.pipe(res);
    });
  });
  return router;
}
