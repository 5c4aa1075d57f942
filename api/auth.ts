import type { Request, RequestHandler, Response } from 'express';
import { AppError } from '../common/errors.js';
import type { TokenClaims, Tokens } from '../controller/index.js';

export interface Caller {
  claims: TokenClaims;
}

export function bearerToken(req: Request): string {
  return bearerFrom(req.get('authorization'));
}

/** The token of an Authorization header, or a 401 that says what is wrong with it. */
export function bearerFrom(header: string | undefined): string {
  if (!header)
    throw new AppError('unauthorized', 'missing token: send "Authorization: Bearer <token>" (get one from /login)');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new AppError('unauthorized', 'malformed Authorization header: expected "Bearer <token>"');
  return match[1]!;
}

/**
 * For what a browser opens by URL, where it cannot set headers (EventSource, a download link): the
 * Authorization header if there is one, else `?token=`.
 */
export function bearerOrQueryToken(req: Request): string {
  if (req.get('authorization') !== undefined) return bearerToken(req);
  const token = req.query.token;
  if (typeof token === 'string' && token !== '') return token;
  throw new AppError(
    'unauthorized',
    'missing token: send "Authorization: Bearer <token>" or ?token=<token> (get one from /login)',
  );
}

/** The claims of a valid token, or 401. */
export function verifiedClaims(tokens: Tokens, token: string): TokenClaims {
  const claims = tokens.verify(token);
  if (!claims) throw new AppError('unauthorized', 'invalid, expired or revoked token: log in again');
  return claims;
}

/** Any valid token: a user's, or a worker's for the image routes. */
export function requireToken(tokens: Tokens, read: (req: Request) => string = bearerToken): RequestHandler {
  return (req, res, next) => {
    res.locals.caller = { claims: verifiedClaims(tokens, read(req)) } satisfies Caller;
    next();
  };
}

/** A user's token only: worker tokens are scoped to image download and upload. */
export function requireUser(tokens: Tokens, read: (req: Request) => string = bearerToken): RequestHandler {
  const any = requireToken(tokens, read);
  return (req, res, next) => {
    any(req, res, () => {
      if (callerOf(res).claims.scope !== 'user')
        throw new AppError('forbidden', 'worker tokens may only download and upload images');
      next();
    });
  };
}

export function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}
