// Log lines for a person at a terminal: pino's JSON record as one short, coloured line.

const LEVELS: Record<number, { name: string; colour: number }> = {
  10: { name: 'TRACE', colour: 90 },
  20: { name: 'DEBUG', colour: 36 },
  30: { name: 'INFO', colour: 32 },
  40: { name: 'WARN', colour: 33 },
  50: { name: 'ERROR', colour: 31 },
  60: { name: 'FATAL', colour: 35 },
};

function paint(text: string, colour: number, colours: boolean): string {
  return colours ? `\u001b[${colour}m${text}\u001b[0m` : text;
}

/** `HH:MM:SS.mmm LEVEL name: message  key=value ...`; a line that is not a JSON record passes unchanged. */
export function prettyLine(line: string, colours: boolean): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return line;
  const { level, time, name, msg, ...fields } = record as Record<string, unknown>;
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const known = typeof level === 'number' ? LEVELS[level] : undefined;
  const label = paint((known?.name ?? String(level)).padEnd(5), known?.colour ?? 0, colours);
  const extra = Object.entries(fields)
    .map(([key, value]) => `${paint(key, 90, colours)}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return (
    `${when} ${label} ${typeof name === 'string' ? `${name}: ` : ''}` +
    `${typeof msg === 'string' ? msg : ''}${extra ? `  ${extra}` : ''}\n`
  );
}

/** A pino destination that writes pretty lines to `out`. */
export function prettyDestination(out: NodeJS.WritableStream, colours: boolean): { write(line: string): void } {
  return { write: (line) => void out.write(prettyLine(line, colours)) };
}
