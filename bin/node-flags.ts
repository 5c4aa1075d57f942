// The Node flags each program runs with when its launcher starts it: `npm start` the server, the server its
// local workers, `npm run worker` a worker (and the benchmarks, which start them the same ways). A user's own
// value of one of these flags is kept.
//
// Both set V8's first old-generation limit above what V8 would choose for their small heaps (15-20 MB of
// records and code, or of code alone), where every image passes through as buffers:
// - the server: V8 started a major collection about every 0.6 s (`--trace-incremental-marking`: "Start (task)"
//   at 18-19 MB of a 45-64 MB limit), 23% of the server's CPU at 35 1080p images/s (`perf`); with 128 MB there
//   were none in 800 images, and its RSS stayed where it was (176 MB);
// - a worker: 42-53 major collections in 4,000 small jobs (one every 80-100 jobs, with the background threads'
//   marking about a fifth of the worker's CPU per job); with 64 MB, 7 in 6,000, and its RSS 170 MB against 150.
export const NODE_FLAGS = {
  dpip: ['--initial-old-space-size=128'],
  'dpip-worker': ['--initial-old-space-size=64'],
} as const satisfies Record<string, readonly string[]>;

export type Program = keyof typeof NODE_FLAGS;

/** The programs a launcher starts: those with node flags of their own. */
export const PROGRAMS = Object.keys(NODE_FLAGS) as Program[];

export function isProgram(name: string | undefined): name is Program {
  return name !== undefined && Object.hasOwn(NODE_FLAGS, name);
}

const flagName = (flag: string): string => flag.split('=')[0]!.replaceAll('_', '-');

/** `execArgv` with the program's flags that it does not set itself (a flag given already keeps its value). */
export function withNodeFlags(program: Program, execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return [...execArgv, ...NODE_FLAGS[program].filter((flag) => !given.has(flagName(flag)))];
}

/** The program's flags that neither its node flags nor NODE_OPTIONS set (a value of the user's counts as set). */
export function missingNodeFlags(program: Program, execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(flagName));
  return NODE_FLAGS[program].filter((flag) => !given.has(flagName(flag)));
}

/**
 * What a local worker runs with: the server's node flags (profiling, a heap limit) but for those the server
 * runs with for its own sake, and the worker's own.
 */
export function localWorkerNodeFlags(serverExecArgv: readonly string[]): string[] {
  const own = new Set<string>(NODE_FLAGS.dpip);
  return withNodeFlags(
    'dpip-worker',
    serverExecArgv.filter((flag) => !own.has(flag)),
  );
}
