// Shared scaffolding of the unit tests: fixed instants (no wall clock) and temporary directories.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Transition } from '../../controller/jobs/index.js';
import type { Job, User } from '../../controller/store/index.js';
import { expect } from 'chai';

/** The instant the tests start from: a fixed time, never the wall clock. */
export const T0 = Date.parse('2030-01-01T00:00:00.000Z');

export function iso(at: number): string {
  return new Date(at).toISOString();
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dpip-unit-'));
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function user(name: string): User {
  return { username: name, password_hash: `hash-of-${name}`, created_at: new Date(0).toISOString() };
}

/** The job a transition moved; fails the test when it was refused. */
export function applied(result: Transition): Job {
  if (!result.ok) expect.fail(`the transition was refused: ${result.refusal}`);
  return result.job;
}

/** The lease id a leased job holds; fails the test when it holds none. */
export function leaseId(job: Job): string {
  if (!job.lease) expect.fail(`job ${job.id} holds no lease (${job.state})`);
  return job.lease.lease_id;
}
