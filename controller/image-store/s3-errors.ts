import { ImageStoreUnavailable } from './errors.js';

/**
 * What an S3 call's failure means. The SDK throws three sorts of errors: the service's answer (an
 * S3ServiceException: its name is the S3 error code, `$metadata.httpStatusCode` its status), the
 * transport's (a Node error with a `code` such as ECONNREFUSED, or a TimeoutError), and the credential
 * chain's (CredentialsProviderError). They are told apart by those fields only, not by class, so that an
 * S3-compatible store answering with a code AWS does not use is still understood by its status.
 */

/** Errors of the connection itself, from Node's sockets and DNS. */
const TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
]);

/** The service asking to slow down, or saying it timed out: try again later. */
const BUSY_CODES: ReadonlySet<string> = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestTimeout',
  'ServiceUnavailable',
]);

/** The credentials were refused: wrong, revoked, expired, or not allowed to do this. */
const DENIED_CODES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
]);

/** The bucket is in another region than the one configured. */
const REGION_CODES: ReadonlySet<string> = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException',
]);

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined;
}

/** The HTTP status of the store's answer; undefined when there was none (the request never got one). */
export function httpStatus(error: unknown): number | undefined {
  const status = field(field(error, '$metadata'), 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

/** The S3 error code (the exception's name) of an answer, or the Node code of a transport failure. */
export function errorCode(error: unknown): string {
  const code = field(error, 'code');
  if (httpStatus(error) === undefined && typeof code === 'string') return code;
  const name = field(error, 'name');
  return typeof name === 'string' ? name : 'Error';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** No object at that key (a HEAD's 404 has no body, so no code: its status says it). */
export function isNoSuchKey(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'NoSuchKey' || (httpStatus(error) === 404 && code !== 'NoSuchBucket');
}

function isTransportFailure(error: unknown): boolean {
  return (
    httpStatus(error) === undefined &&
    (TRANSPORT_CODES.has(errorCode(error)) || field(error, 'name') === 'TimeoutError')
  );
}

function isNoCredentials(error: unknown): boolean {
  return field(error, 'name') === 'CredentialsProviderError';
}

function isDenied(error: unknown): boolean {
  const status = httpStatus(error);
  return DENIED_CODES.has(errorCode(error)) || status === 401 || status === 403;
}

/** Unreachable, timing out, or busy: the same request may well pass in a moment. */
export function isTransient(error: unknown): boolean {
  if (isTransportFailure(error)) return true;
  const status = httpStatus(error);
  if (status === undefined) return false;
  return status >= 500 || status === 408 || status === 429 || BUSY_CODES.has(errorCode(error));
}

/**
 * Whether the store itself failed (unreachable, timing out, busy, refusing our credentials, its bucket
 * gone): what the same request may survive later. Any other answer is a request the store rejected as
 * such (a 400, a 409), which retrying will not change.
 */
export function isStoreFailure(error: unknown): boolean {
  return isTransient(error) || isNoCredentials(error) || isDenied(error) || httpStatus(error) === 404;
}

/** Throws the store's failure as an ImageStoreUnavailable (answered 503), and anything else as it is. */
export function storeFailure(what: string, error: unknown): never {
  if (isStoreFailure(error)) throw new ImageStoreUnavailable(what, error);
  throw error;
}

export interface StoreLocation {
  bucket: string;
  prefix: string;
  endpoint: string | null;
  region: string;
}

/** Why the probe of check() failed, in words that say what to change (the store's `where` goes before). */
export function probeProblem(error: unknown, at: StoreLocation): string {
  const code = errorCode(error);
  const under = at.prefix === '' ? 'in it' : `under "${at.prefix}/"`;
  if (isNoCredentials(error)) {
    return (
      'no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to a profile of ' +
      `~/.aws/credentials (the AWS SDK's default chain) (${messageOf(error)})`
    );
  }
  if (isTransportFailure(error)) {
    const endpoint = at.endpoint ?? `of AWS S3 in region ${at.region}`;
    return `cannot reach the S3 endpoint ${endpoint} (${code}): check its address, and that the store is running`;
  }
  if (code === 'NoSuchBucket') return `no bucket "${at.bucket}" there: create it, or name an existing one`;
  if (REGION_CODES.has(code) || httpStatus(error) === 301) {
    return `bucket "${at.bucket}" is not in region ${at.region} (${code}): name the bucket's own region`;
  }
  if (isDenied(error)) {
    return (
      `access to bucket "${at.bucket}" denied (${code}): check the credentials (AWS_ACCESS_KEY_ID and ` +
      `AWS_SECRET_ACCESS_KEY, or the profile), and that they may put, get and delete objects ${under}`
    );
  }
  const status = httpStatus(error) === undefined ? '' : `, HTTP ${httpStatus(error)}`;
  return `the store failed (${code}${status}): ${messageOf(error)}`;
}
