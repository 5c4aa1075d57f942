import type { Request, RequestHandler, Response } from 'express';
import { AppError } from '../common/errors.js';
import type { TokenClaims, Tokens, UrlTokenPurpose } from '../controller/index.js';

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

/** Where each kind of URL token is used, and where it comes from. */
const URL_TOKEN_USE: Record<UrlTokenPurpose, { route: string; issuer: (req: Request) => string }> = {
  events: { route: 'GET /events', issuer: () => 'POST /events/token' },
  archive: {
    route: 'GET /workloads/{id}/archive',
    issuer: (req) => `POST /workloads/${String(req.params.id ?? '{id}')}/archive/token`,
  },
};

/**
 * The claims of a valid token sent in the Authorization header: a user's or a worker's, or 401. A URL
 * token (events, archive) is refused here: it belongs in the URL it was made for.
 */
export function verifiedClaims(tokens: Tokens, token: string): TokenClaims {
  const claims = tokens.verify(token);
  if (!claims) throw new AppError('unauthorized', 'invalid, expired or revoked token: log in again');
  if (claims.scope !== 'user' && claims.scope !== 'worker') {
    throw new AppError(
      'unauthorized',
      `this token is accepted only in the URL of ${URL_TOKEN_USE[claims.scope].route}: ` +
        'send your own token in the Authorization header',
    );
  }
  return claims;
}

/** Any valid token: a user's, or a worker's for the image routes. */
export function requireToken(tokens: Tokens): RequestHandler {
  return (req, res, next) => {
    res.locals.caller = { claims: verifiedClaims(tokens, bearerToken(req)) } satisfies Caller;
    next();
  };
}

/** A token of this scope only; another valid token is 403 with `refusal`. */
function requireScope(tokens: Tokens, scope: 'user' | 'worker', refusal: string): RequestHandler {
  const any = requireToken(tokens);
  return (req, res, next) => {
    any(req, res, () => {
      if (callerOf(res).claims.scope !== scope) throw new AppError('forbidden', refusal);
      next();
    });
  };
}

/** A user's token only: worker tokens are scoped to image download and upload. */
export function requireUser(tokens: Tokens): RequestHandler {
  return requireScope(tokens, 'user', 'worker tokens may only download and upload images');
}

/** A worker's token only: what workers alone send (their stored results). */
export function requireWorker(tokens: Tokens): RequestHandler {
  return requireScope(tokens, 'worker', 'only workers report results');
}

/**
 * For what a browser opens by URL, where it cannot set headers (EventSource, a download link): a
 * user's token in the Authorization header, or else, in `?token=`, a short-lived token made for this
 * purpose (and, for an archive, this workload). A user's own token is refused in the URL: a URL ends
 * up in proxy and server logs, in the browser's history and in Referer headers, and a user token
 * opens everything for a day.
 */
export function requireUserOrUrlToken(tokens: Tokens, purpose: UrlTokenPurpose): RequestHandler {
  const user = requireUser(tokens);
  return (req, res, next) => {
    if (req.get('authorization') !== undefined) return user(req, res, next);
    const issuer = URL_TOKEN_USE[purpose].issuer(req);
    const token = req.query.token;
    if (typeof token !== 'string' || token === '') {
      throw new AppError(
        'unauthorized',
        `missing token: send "Authorization: Bearer <token>", or ?token=<a token from ${issuer}>`,
      );
    }
    const claims = tokens.verify(token);
    if (!claims) {
      throw new AppError(
        'unauthorized',
        `invalid, expired or revoked token: get a new one from ${issuer} (it is valid for a minute)`,
      );
    }
    if (claims.scope === 'user' || claims.scope === 'worker') {
      throw new AppError(
        'unauthorized',
        `a ${claims.scope} token is not accepted in the URL: send it in the Authorization header, ` +
          `or put a short-lived token from ${issuer} in the URL`,
      );
    }
    if (claims.scope !== purpose) {
      throw new AppError(
        'unauthorized',
        `this token is for ${URL_TOKEN_USE[claims.scope].route}: get one from ${issuer}`,
      );
    }
    if (purpose === 'archive' && claims.workload !== String(req.params.id))
      throw new AppError('unauthorized', `this token is for another workload's archive: get one from ${issuer}`);
    res.locals.caller = { claims } satisfies Caller;
    next();
  };
}

/** The answer that hands out a URL token: the token, its lifetime, and the URL with it. */
export function urlTokenAnswer(
  issued: { token: string; expiresIn: number },
  path: string,
): { token: string; expires_in: number; url: string } {
  return {
    token: issued.token,
    expires_in: issued.expiresIn,
    url: `${path}?token=${encodeURIComponent(issued.token)}`,
  };
}

export function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}
