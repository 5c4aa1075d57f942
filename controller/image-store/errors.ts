import { AppError } from '../../common/errors.js';

/**
 * The image store itself failed: unreachable, refusing, or timing out. Answered 503: nothing was kept,
 * and the same request later may succeed. `cause` is the store's own error, for the log.
 */
export class ImageStoreUnavailable extends AppError {
  override name = 'ImageStoreUnavailable';
  constructor(
    what: string,
    override readonly cause?: unknown,
  ) {
    super('unavailable', `the image store is unavailable (${what}): nothing was kept. Try again shortly`);
  }
}

/** The store cannot be used as configured (no such bucket, access denied): the server refuses to start. */
export class ImageStoreConfigError extends Error {
  override name = 'ImageStoreConfigError';
}
