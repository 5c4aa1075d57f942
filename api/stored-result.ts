import { AppError } from '../common/errors.js';
import type { FilteredUpload } from '../common/protocol.js';
import type { Controller, ImageRecord, IncomingImage } from '../controller/index.js';
import type { ApiConfig } from './config.js';
import { inspectStoredImage, STORED_HEAD_BYTES } from './upload.js';

/** Keeps a result its worker stored itself, as reported with its lease (`stored=true`, or one of `POST /results`). */
export type StoredResultKeeper = (
  upload: Omit<FilteredUpload, 'stored' | 'type'>,
  workerId: string,
) => Promise<ImageRecord>;

/**
 * A result the worker put in the store itself (a presigned PUT, or by path): checked where its lease's key says
 * (it is there, an image of the type its chain makes, within the pixel cap) before it completes the job. What
 * fails the check fails that attempt (422), and the object goes. A report repeated after the job completed
 * with this lease is answered as the first was.
 */
export function storedResultKeeper(controller: Controller, config: ApiConfig): StoredResultKeeper {
  return async (reported, workerId) => {
    const upload: FilteredUpload = { type: 'filtered', ...reported, stored: 'true' };
    const repeated = controller.transfers.acceptedFor(upload);
    if (repeated) return repeated;
    const { key, mime, object } = await controller.transfers.findStored(upload, workerId, STORED_HEAD_BYTES);
    let incoming: IncomingImage;
    try {
      if (object.size > config.maxUploadBytes)
        throw new AppError('too_large', `it is ${object.size} bytes, over the limit of ${config.maxUploadBytes}`);
      const readHead = (bytes: number) => controller.imageStore.inspect(key, bytes);
      incoming = await inspectStoredImage(readHead, key, object, config.maxPixels, 'result');
      if (incoming.mime !== mime) throw new AppError('unprocessable', `it is ${incoming.mime}, not ${mime}`);
    } catch (error) {
      return controller.transfers.reject(upload, workerId, error instanceof Error ? error.message : String(error));
    }
    const kept = await controller.images.addFiltered(upload, workerId, incoming);
    controller.activity.receivedFrom(workerId, kept.bytes);
    return kept;
  };
}
