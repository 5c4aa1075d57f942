import type { ImageView, OutputFormat } from '../common/views.js';
import type { ImageRecord, Store, Workload } from './store/index.js';
import { forEachOriginal } from './workload-results.js';

export type { ImageView } from '../common/views.js';

const FORMATS: Record<string, OutputFormat> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

function formatOf(mime: string): OutputFormat {
  return FORMATS[mime] ?? 'png';
}

function view(image: ImageRecord): ImageView {
  return {
    image_id: image.id,
    type: image.type,
    source_image_id: image.source_image_id,
    mime: image.mime,
    format: formatOf(image.mime),
    width: image.width,
    height: image.height,
    bytes: image.bytes,
    created_at: image.created_at,
  };
}

/**
 * The workload's images in upload order: each original, followed by its filtered image once its job
 * is done (a filtered file of a job that has not finished is not a result yet).
 */
export function listWorkloadImages(store: Store, workload: Workload): ImageView[] {
  const views: ImageView[] = [];
  forEachOriginal(store, workload, (original, job, filtered) => {
    views.push({
      ...view(original),
      job_state: job?.state ?? 'queued',
      error: job?.state === 'failed' ? (job.error ?? 'failed') : null,
      filtered_image_id: filtered?.id ?? null,
    });
    if (filtered) views.push(view(filtered));
  });
  return views;
}

/** The filtered images of the workload's finished jobs, in upload order of their originals. */
export function filteredImages(store: Store, workload: Workload): ImageRecord[] {
  const images: ImageRecord[] = [];
  forEachOriginal(store, workload, (_original, _job, filtered) => {
    if (filtered) images.push(filtered);
  });
  return images;
}
