export type { ImageStore, IncomingContent, OpenedObject, PresignedUrl, StoredObject } from './types.js';
export { ImageStoreConfigError, ImageStoreUnavailable } from './errors.js';
export { LocalImageStore } from './local-store.js';
