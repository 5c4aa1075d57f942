import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { own, type Store } from './store/index.js';

export type TokenScope = 'user' | 'worker';

export interface TokenClaims {
  sub: string; // username, or worker id
  scope: TokenScope;
  jti: string;
  exp: number; // epoch seconds
}

export interface Tokens {
  issue(subject: string, scope: TokenScope): { token: string; claims: TokenClaims };
  /** The claims of a valid, unrevoked token, or null. Only HS256 is accepted: `alg: none` and other algorithms fail. */
  verify(token: string): TokenClaims | null;
  /** Refuses the token from now on (the list is persisted until the token would have expired). */
  revoke(claims: Pick<TokenClaims, 'jti' | 'exp'>): Promise<void>;
}

const ALGORITHM = 'HS256';
const VERIFIED_CACHE_SIZE = 10_000;

/** The signing secret is generated once and kept in the data dir, so tokens survive a restart. */
export async function loadSigningSecret(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, 'jwt-secret');
  try {
    const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
    if (secret.length >= 32) return secret;
  } catch {
    // first start: fall through and create it
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(48);
  await writeFile(file, secret.toString('hex'), { mode: 0o600 });
  return secret;
}

export function createTokens(store: Store, secret: Buffer, ttlSeconds: Record<TokenScope, number>): Tokens {
  // a KeyObject, made once: given raw bytes, jsonwebtoken would try to parse them as a public key on every call
  const key = createSecretKey(secret);
  // Tokens already checked, by their exact text: a worker sends the same token with every request, and
  // the signature check was a measurable part of each one. Expiry and revocation are still checked
  // every time; the oldest entry goes when the cache is full.
  const verified = new Map<string, TokenClaims>();
  return {
    issue(subject, scope) {
      const claims: TokenClaims = {
        sub: subject,
        scope,
        jti: randomUUID(),
        exp: Math.floor(Date.now() / 1000) + ttlSeconds[scope],
      };
      return { token: jwt.sign(claims, key, { algorithm: ALGORITHM }), claims };
    },
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
      } else if (Math.floor(Date.now() / 1000) >= claims.exp) {
        verified.delete(token);
        return null;
      }
      if (own(store.data.revoked_tokens, claims.jti)) return null;
      return claims;
    },
    async revoke(claims) {
      const now = Date.now();
      for (const [jti, entry] of Object.entries(store.data.revoked_tokens)) {
        if (entry.expires_at < now) {
          delete store.data.revoked_tokens[jti];
          store.touch('revoked_tokens', jti);
        }
      }
      store.data.revoked_tokens[claims.jti] = { jti: claims.jti, expires_at: claims.exp * 1000 };
      store.touch('revoked_tokens', claims.jti);
      await store.commit();
    },
  };
}

function isClaims(value: unknown): value is TokenClaims {
  if (typeof value !== 'object' || value === null) return false;
  const claims = value as Record<string, unknown>;
  return (
    typeof claims.sub === 'string' &&
    (claims.scope === 'user' || claims.scope === 'worker') &&
    typeof claims.jti === 'string' &&
    typeof claims.exp === 'number'
  );
}
