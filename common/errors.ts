/** An error with a message a user can act on, and the kind that decides its HTTP status. */
export type ErrorKind =
  | 'bad_request' // 400
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'conflict' // 409
  | 'gone' // 410
  | 'too_large' // 413
  | 'unsupported_media_type' // 415
  | 'unprocessable' // 422
  | 'too_many_requests' // 429
  | 'insufficient_storage' // 507
  | 'unavailable'; // 503

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The file system said it has no room (or the user's quota is spent). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function diskFullError(): AppError {
  return new AppError(
    'insufficient_storage',
    "the server's disk is full: nothing was saved. Try again once space has been freed",
  );
}
