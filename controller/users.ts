import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Store } from './store/index.js';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const KEY_LENGTH = 64;
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
// Compared against when the user does not exist, so a wrong username costs as long as a wrong password.
const DECOY_HASH = `scrypt$${randomBytes(16).toString('hex')}$${randomBytes(KEY_LENGTH).toString('hex')}`;

/** The shortest password a new user may choose, unless the server sets another (--min-password-length). */
export const DEFAULT_MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

export type CreateUserResult = 'created' | 'exists';

export interface Users {
  create(username: string, password: string): Promise<CreateUserResult>;
  verify(username: string, password: string): Promise<boolean>;
  /** True if the name is taken, in any case ("Alice" takes "alice"). */
  exists(username: string): boolean;
}

export function validateUsername(username: string): string | null {
  return USERNAME.test(username)
    ? null
    : 'username must be 1-64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit';
}

/**
 * The rule for a password being set (a new user). Passwords are checked against the minimum only
 * when set: a user whose password was set under a lower minimum still logs in with it.
 */
export function validatePassword(password: string, minLength = DEFAULT_MIN_PASSWORD_LENGTH): string | null {
  if (password.length < minLength) return `password must be at least ${minLength} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `password must be at most ${MAX_PASSWORD_LENGTH} characters`;
  return null;
}

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH);
  return `scrypt$${salt.toString('hex')}$${key.toString('hex')}`;
}

async function matches(password: string, stored: string): Promise<boolean> {
  const [kind, saltHex, keyHex] = stored.split('$');
  if (kind !== 'scrypt' || !saltHex || !keyHex) return false;
  const expected = Buffer.from(keyHex, 'hex');
  const actual = await scryptAsync(password, Buffer.from(saltHex, 'hex'), expected.length);
  return timingSafeEqual(actual, expected);
}

export function createUsers(store: Store): Users {
  // unique regardless of case, so "Alice" cannot pass for "alice"
  const taken = (username: string): boolean =>
    Object.keys(store.data.users).some((name) => name.toLowerCase() === username.toLowerCase());
  return {
    exists: taken,
    async create(username, password) {
      if (taken(username)) return 'exists';
      const password_hash = await hashPassword(password);
      if (taken(username)) return 'exists';
      store.change('users', username);
      store.data.users[username] = { username, password_hash, created_at: new Date().toISOString() };
      await store.commit();
      return 'created';
    },
    async verify(username, password) {
      const user = Object.hasOwn(store.data.users, username) ? store.data.users[username] : undefined;
      const ok = await matches(password, user?.password_hash ?? DECOY_HASH);
      return ok && !!user;
    },
  };
}
