import { LocalImageStore } from './local-store.js';
import type { S3StoreConfig } from './s3-store.js';
import type { ImageStore } from './types.js';

/** Where the images are kept: a local folder, or an S3-compatible bucket. */
export type ImageStoreConfig = { kind: 'local'; imagesDir: string } | ({ kind: 's3' } & S3StoreConfig);

/**
 * The image store of a configuration. No I/O: the caller runs check() (which says what is wrong, and
 * stops the start) and then prepare().
 */
export async function openImageStore(config: ImageStoreConfig): Promise<ImageStore> {
  if (config.kind === 'local') return new LocalImageStore(config.imagesDir);
  const { S3ImageStore } = await import('./s3-store.js');
  return new S3ImageStore(config);
}
