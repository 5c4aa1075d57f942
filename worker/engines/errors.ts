/** The input can never be processed (not an image, corrupt, truncated): fail the job without retry. */
export class UndecodableImageError extends Error {
  override name = 'UndecodableImageError';
}
