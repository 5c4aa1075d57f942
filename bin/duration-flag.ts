import { formatDuration, parseDuration } from '../common/units.js';

/** A duration flag's value in milliseconds (`500ms`, `30s`, `10m`, `2h`, or a bare number of ms), within bounds. */
export function durationFlag(name: string, value: string, minMs: number, maxMs: number): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (error) {
    throw new Error(`--${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (ms < minMs || ms > maxMs)
    throw new Error(`--${name} must be from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, not ${value}`);
  return ms;
}
