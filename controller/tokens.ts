import { createSecretKey, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { own, type Store } from './store/index.js';

/** `user` and `worker` tokens are sent in the Authorization header; `events` and `archive` tokens in a URL. */
export type TokenScope = 'user' | 'worker' | UrlTokenPurpose;
export type UrlTokenPurpose = 'events' | 'archive';

/** A token by its id and expiry: enough to tell whether it is still good, or to revoke it. */
export interface TokenRef {
  jti: string;
  exp: number; // epoch seconds
}

export interface TokenClaims extends TokenRef {
  sub: string; // username, or worker id
  scope: TokenScope;
  /** A URL token: the user token it was issued under. It is good only as long as that one is. */
  session?: TokenRef;
  /** An archive token: the workload whose archive it opens. */
  workload?: string;
}

export interface Tokens {
  issue(subject: string, scope: 'user' | 'worker'): { token: string; claims: TokenClaims };
  /**
   * A short-lived token to put in a URL (what EventSource and a download link open cannot carry a
   * header) for one purpose, issued under a user's token: it lives `url` seconds, never longer than
   * that token, and is refused once that token is revoked.
   */
  issueForUrl(
    user: TokenClaims,
    purpose: UrlTokenPurpose,
    workload?: string,
  ): { token: string; claims: TokenClaims; expiresIn: number };
  /** The claims of a valid, unrevoked token, or null. Only HS256 is accepted: `alg: none` and other algorithms fail. */
  verify(token: string): TokenClaims | null;
  /** True while the token is neither expired nor revoked. */
  isLive(ref: TokenRef): boolean;
  /** Refuses the token from now on (the list is persisted until the token would have expired). */
  revoke(claims: TokenRef): Promise<void>;
}

/** Lifetimes in seconds; `url` (URL tokens) defaults to 60. */
export interface TokenLifetimes {
  user: number;
  worker: number;
  url?: number;
}

export const DEFAULT_URL_TOKEN_TTL_SECONDS = 60;

const ALGORITHM = 'HS256';
const VERIFIED_CACHE_SIZE = 10_000;

export function createTokens(store: Store, secret: Buffer, ttlSeconds: TokenLifetimes): Tokens {
  // a KeyObject, made once: given raw bytes, jsonwebtoken would try to parse them as a public key on every call
  const key = createSecretKey(secret);
  // Tokens already checked, by their exact text: a worker sends the same token with every request, and
  // the signature check was a measurable part of each one. Expiry and revocation are still checked
  // every time; the oldest entry goes when the cache is full.
  const verified = new Map<string, TokenClaims>();
  const nowSeconds = (): number => Math.floor(Date.now() / 1000);
  const isLive = (ref: TokenRef): boolean => nowSeconds() < ref.exp && !own(store.data.revoked_tokens, ref.jti);
  const sign = (claims: TokenClaims): string => jwt.sign(claims, key, { algorithm: ALGORITHM });
  return {
    issue(subject, scope) {
      const claims: TokenClaims = { sub: subject, scope, jti: randomUUID(), exp: nowSeconds() + ttlSeconds[scope] };
      return { token: sign(claims), claims };
    },
    issueForUrl(user, purpose, workload) {
      if (user.scope !== 'user') throw new Error('URL tokens are issued under a user token');
      const now = nowSeconds();
      const claims: TokenClaims = {
        sub: user.sub,
        scope: purpose,
        jti: randomUUID(),
        exp: Math.min(now + (ttlSeconds.url ?? DEFAULT_URL_TOKEN_TTL_SECONDS), user.exp),
        session: { jti: user.jti, exp: user.exp },
        ...(workload === undefined ? {} : { workload }),
      };
      return { token: sign(claims), claims, expiresIn: claims.exp - now };
    },
    isLive,
    verify(token) {
      let claims = verified.get(token);
      if (!claims) {
        let decoded: unknown;
        try {
          decoded = jwt.verify(token, key, { algorithms: [ALGORITHM] });
        } catch {
          return null;
        }
        if (!isClaims(decoded)) return null;
        claims = decoded;
        if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
        verified.set(token, claims);
      } else if (nowSeconds() >= claims.exp) {
        verified.delete(token);
        return null;
      }
      if (!isLive(claims)) return null;
      if (claims.session && !isLive(claims.session)) return null;
      return claims;
    },
    async revoke(claims) {
      const now = Date.now();
      for (const [jti, entry] of Object.entries(store.data.revoked_tokens)) {
        if (entry.expires_at < now) {
          store.change('revoked_tokens', jti);
          delete store.data.revoked_tokens[jti];
        }
      }
      store.change('revoked_tokens', claims.jti);
      store.data.revoked_tokens[claims.jti] = { jti: claims.jti, expires_at: claims.exp * 1000 };
      await store.commit();
    },
  };
}

function isRef(value: unknown): value is TokenRef {
  if (typeof value !== 'object' || value === null) return false;
  const ref = value as Record<string, unknown>;
  return typeof ref.jti === 'string' && typeof ref.exp === 'number';
}

function isClaims(value: unknown): value is TokenClaims {
  if (!isRef(value)) return false;
  const claims = value as unknown as Record<string, unknown>;
  if (typeof claims.sub !== 'string') return false;
  switch (claims.scope) {
    case 'user':
    case 'worker':
      return claims.session === undefined && claims.workload === undefined;
    case 'events':
      return isRef(claims.session) && claims.workload === undefined;
    case 'archive':
      return isRef(claims.session) && typeof claims.workload === 'string';
    default:
      return false;
  }
}
