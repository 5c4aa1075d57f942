import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { dataDirHeld } from './data-dir-lock.js';
import { journalSegments, replayJournal } from './journal.js';
import { emptyData, type Data } from './schema.js';
import { LEGACY_SNAPSHOT_FILE, SNAPSHOT_FILE, StreamedSnapshot } from './snapshot.js';
import { signingKeyOf } from './signing-key.js';

/** What a lowdb data dir holds: its records (the snapshot with the journal replayed over it) and its signing key. */
export interface LowdbContents {
  data: Data;
  /** The token signing key (`jwt-secret`) as hex; null when the dir has none (or not a usable one). */
  signingKeyHex: string | null;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Reads a lowdb datastore without changing it: no snapshot is written, no journal segment started or removed
 * (opening it as a server does would). Throws when the dir holds no datastore at all.
 */
export async function readLowdbDir(dataDir: string): Promise<LowdbContents> {
  const segments = await journalSegments(dataDir).catch((error: unknown) => {
    throw new Error(`cannot read the data dir ${dataDir}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const snapshots = await Promise.all(
    [SNAPSHOT_FILE, LEGACY_SNAPSHOT_FILE].map((name) => exists(path.join(dataDir, name))),
  );
  if (segments.length === 0 && !snapshots.some(Boolean))
    throw new Error(`${dataDir} holds no lowdb datastore (no ${SNAPSHOT_FILE}, ${LEGACY_SNAPSHOT_FILE} or db.journal)`);
  // a server still writing it would leave records out of what is read
  const held = dataDirHeld(dataDir);
  if (held) throw new Error(held);
  const snapshot = new StreamedSnapshot(dataDir, () => {
    throw new Error('a datastore read for an import is never written');
  });
  const data = (await snapshot.read()) ?? emptyData();
  for (const segment of segments) await replayJournal(segment.path, data);
  let signingKeyHex: string | null = null;
  try {
    signingKeyHex = signingKeyOf(await readFile(path.join(dataDir, 'jwt-secret'), 'utf8'))?.toString('hex') ?? null;
  } catch {
    // none: the servers on the new datastore make one (tokens signed before are then refused)
  }
  return { data, signingKeyHex };
}
