export type { ImageStore, IncomingContent, OpenedObject, PresignedUrl, StoredObject } from './types.js';
export { ImageStoreConfigError, ImageStoreUnavailable } from './errors.js';
export { LocalImageStore } from './local-store.js';
export { S3ImageStore, type S3StoreConfig } from './s3-store.js';
export { type ImageStoreConfig, openImageStore } from './open-store.js';
