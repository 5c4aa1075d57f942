// Durations and sizes as people write them on a command line: `500ms`, `30s`, `10m`, `12h`, `7d`;
// `512KB`, `512MB`, `10GB`, `1TB` (binary multiples: 1 KB = 1024 bytes, as free space and RAM are
// usually shown; `KiB`, `MiB`, ... mean the same). A bare number is milliseconds or bytes.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30, tb: 2 ** 40 };

const AMOUNT = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

function parseAmount(text: string, units: Record<string, number>, what: string, examples: string): number {
  const match = AMOUNT.exec(text);
  const unit = (match?.[2] ?? '').toLowerCase().replace(/ib$/, 'b');
  const factor = unit === '' ? 1 : units[unit];
  if (!match || factor === undefined) throw new Error(`"${text}" is not a ${what}: write it as ${examples}`);
  const value = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(value)) throw new Error(`"${text}" is too large a ${what}`);
  return value;
}

/** Milliseconds from `500ms`, `30s`, `10m`, `12h`, `7d`, or a bare number of milliseconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') return text;
  return parseAmount(text, DURATION_UNITS, 'duration', '500ms, 30s, 10m, 12h or 7d');
}

/** A duration for people, written as a flag takes it: `500ms`, `1.5s`, `10m`, `2h`, `7d` (one decimal at most). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const factor = DURATION_UNITS[unit]!;
    if (ms >= factor) return `${Number((ms / factor).toFixed(1))}${unit}`;
  }
  return `${Math.round(ms)}ms`;
}

/** Bytes from `512KB`, `512MB`, `10GB`, `1TB` (or KiB, MiB, ...), or a bare number of bytes. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  return parseAmount(text, SIZE_UNITS, 'size', '512KB, 512MB, 10GB or 1TB');
}

/** A size for people: `1.5 GB`, `512 MB`, `20 KB`, `12 bytes`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['TB', 2 ** 40],
    ['GB', 2 ** 30],
    ['MB', 2 ** 20],
    ['KB', 2 ** 10],
  ] as const) {
    if (bytes >= factor) return `${Number((bytes / factor).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}
