export type { ImageStore, IncomingContent, OpenedObject, PresignedUrl, StoredObject } from './types.js';
export { ImageStoreConfigError, ImageStoreUnavailable } from './errors.js';
export { LocalImageStore } from './local-store.js';
// the S3 store (and the AWS SDK, about 0.1 s and 6 MB to load) is loaded by openImageStore only when configured
export type { S3StoreConfig } from './s3-store.js';
export { type ImageStoreConfig, openImageStore } from './open-store.js';
