// The Node flags the server runs with when `npm start` starts it (and the benchmarks, which start it the same
// way). Its local workers do not get them.
//
// The server's own heap is small (15-20 MB of records and code), and every upload and download passes through
// it as buffers. V8 sized the old generation's limits from that small heap and started a major collection about
// every 0.6 s (`--trace-incremental-marking`: "Start (task)" at 18-19 MB of a 45-64 MB limit), 23% of the
// server's CPU at 35 1080p images/s (`perf`). With the old generation's first limit at 128 MB there were
// none in 800 images, and the server's RSS stayed where it was (176 MB). A user's own value in the server's
// node flags is kept.
export const SERVER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

const flagName = (flag: string): string => flag.split('=')[0]!.replaceAll('_', '-');

/** `execArgv` with the server's flags that it does not set itself (a flag given already keeps its value). */
export function withServerNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return [...execArgv, ...SERVER_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)))];
}

/** The server's flags that neither its node flags nor NODE_OPTIONS set (a value of the user's counts as set). */
export function missingServerNodeFlags(execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(flagName));
  return SERVER_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** `execArgv` without the server's own flags, for the workers it starts. */
export function withoutServerNodeFlags(execArgv: readonly string[]): string[] {
  const own = new Set(SERVER_NODE_FLAGS);
  return execArgv.filter((flag) => !own.has(flag));
}
