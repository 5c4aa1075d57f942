/** The input can never be processed (not an image, corrupt, truncated): fail the job without retry. */
export class UndecodableImageError extends Error {
  override name = 'UndecodableImageError';
}

/**
 * The chain cannot run on this image, whichever worker tries (a crop outside it, a step making more
 * pixels than allowed), or on this engine (an operation or output format it does not have). The
 * message names the step.
 */
export class ChainError extends Error {
  override name = 'ChainError';
  constructor(
    message: string,
    /** True when another engine could run it: the job may be retried elsewhere. */
    readonly otherEngineMayRun = false,
  ) {
    super(message);
  }
}
