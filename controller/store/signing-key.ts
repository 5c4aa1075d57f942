import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeDurably } from '../../common/local-files.js';

/** Bytes of a new token signing key. */
export const SIGNING_KEY_BYTES = 48;

/** A new signing key, as hex (how both stores keep it). */
export function newSigningKeyHex(): string {
  return randomBytes(SIGNING_KEY_BYTES).toString('hex');
}

/** A kept key, or null when what is kept is not one (too short: written by hand, or damaged). */
export function signingKeyOf(hex: string): Buffer | null {
  const key = Buffer.from(hex.trim(), 'hex');
  return key.length >= 32 ? key : null;
}

/** The lowdb store's key: generated once and kept in the data dir (`jwt-secret`), so tokens survive a restart. */
export async function loadSigningKeyFile(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, 'jwt-secret');
  try {
    const key = signingKeyOf(await readFile(file, 'utf8'));
    if (key) return key;
  } catch {
    // first start: fall through and create it
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const hex = newSigningKeyHex();
  // durable before any token signed with it goes out: a key lost to a power loss voids them all
  await writeDurably(file, hex, { mode: 0o600 });
  return Buffer.from(hex, 'hex');
}
