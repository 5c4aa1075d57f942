// Runs of the system set against bare runs on either side of each: bare, system, bare, system, ..., bare. The
// machine's speed may drift by a third within minutes (a shared virtual machine); a ratio taken against one
// bare run minutes away measures the drift as much as the system. Pairing each system run with the bare runs
// just before and after it moves both sides of its ratio alike; the median of the ratios is the figure. The
// system's first rounds after its start (WARMUP, 4 by default) are not counted: a server and its workers run for
// days, and their first images pay for compiling and first allocations. The server's JIT is the long part: V8
// optimizes a function once it has run often enough, and the server runs much JavaScript a few times per image,
// so its optimizing compiler took 14-18% of the server's CPU for its first 600-800 images and 4-10% after
// (BENCHMARKS.md, section 1c). Each bare run is a fresh process, its start-up included, as it always was.

/** A run's images per second, and the CPU its processes spent per image (ms). */
export interface Rate {
  rate: number;
  cpuPerImage: number;
}

export interface Paired {
  bare: Rate[];
  system: Rate[];
  /** Each system run's rate over the mean of the bare rates on either side of it. */
  ratios: number[];
  /** The same for CPU: the bare runs' CPU per image over the system run's. */
  cpuRatios: number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** System rounds run first and not counted. */
export const WARMUP_ROUNDS = Number(process.env.WARMUP ?? 4);

/**
 * `warmups` system runs not counted (`counted` false), then `rounds` system runs each between two bare runs
 * (rounds + 1 bare runs in all).
 */
export async function pairedRuns(
  rounds: number,
  bare: () => Promise<Rate>,
  system: (counted: boolean) => Promise<Rate>,
  warmups = WARMUP_ROUNDS,
): Promise<Paired> {
  for (let round = 0; round < warmups; round++) await system(false);
  const bares: Rate[] = [await bare()];
  const systems: Rate[] = [];
  for (let round = 0; round < rounds; round++) {
    systems.push(await system(true));
    bares.push(await bare());
  }
  const around = (round: number, of: (rate: Rate) => number): number => (of(bares[round]!) + of(bares[round + 1]!)) / 2;
  return {
    bare: bares,
    system: systems,
    ratios: systems.map((run, round) => run.rate / around(round, (rate) => rate.rate)),
    cpuRatios: systems.map((run, round) => around(round, (rate) => rate.cpuPerImage) / run.cpuPerImage),
  };
}

/** "0.71 (0.68-0.74 over 3 pairs)". */
export function describeRatios(ratios: readonly number[]): string {
  const low = Math.min(...ratios).toFixed(2);
  const high = Math.max(...ratios).toFixed(2);
  const spread = ratios.length > 1 ? ` (${low}-${high} over ${ratios.length} pairs)` : '';
  return `${median(ratios).toFixed(2)}${spread}`;
}
