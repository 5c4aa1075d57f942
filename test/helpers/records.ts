import { randomUUID } from 'node:crypto';
import type { ImageRecord, Workload } from '../../controller/index.js';

/** What varies between the image records a test or a benchmark writes; the rest is a small PNG. */
export type ImageFields = Pick<ImageRecord, 'seq' | 'created_at'> &
  Partial<Pick<ImageRecord, 'id' | 'source_image_id' | 'job_id' | 'bytes'>>;

/** An image record of the workload, as the image library writes one (no file behind it). */
export function imageRecord(workload: Workload, type: ImageRecord['type'], fields: ImageFields): ImageRecord {
  const id = fields.id ?? randomUUID();
  return {
    id,
    workload_id: workload.id,
    owner: workload.owner,
    type,
    source_image_id: fields.source_image_id ?? null,
    job_id: fields.job_id ?? null,
    file: `${workload.name}/${id}.png`,
    mime: 'image/png',
    bytes: fields.bytes ?? 1000,
    width: 64,
    height: 64,
    created_at: fields.created_at,
    seq: fields.seq,
  };
}
