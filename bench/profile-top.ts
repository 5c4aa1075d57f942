// Where a process's CPU went, from a V8 CPU profile (`node --cpu-prof`, as BENCH_NODE_ARGS gives the server
// and its workers): the functions with the most self time, the modules (packages, node's internals, DPIP's
// own folders) by self time, and chosen functions by inclusive time (every sample with them on the stack).
// argv: file.cpuprofile [--per N] [--from-ms T] [--top K] [--match text]
//   --match text  list, by inclusive time, only the functions whose name or file contains text
//   --callers text  for the samples whose own function contains text, the nearest DPIP functions (dist/) that
//                 led to it, with the time each one accounts for
//   --per N       divide every figure by N (the run's jobs: ms per job)
//   --from-ms T   leave out the first T ms of the profile (the process's start-up)
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
};
const file = args[0];
if (!file || file.startsWith('--')) throw new Error('usage: profile-top file.cpuprofile [--per N] [--from-ms T]');
const per = Number(option('--per') ?? 1);
const fromMs = Number(option('--from-ms') ?? 0);
const top = Number(option('--top') ?? 25);
const match = option('--match');
const callersOf = option('--callers');

const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** The module a frame belongs to: a package, node's internals, a DPIP folder, or what V8 calls it. */
function moduleOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return `(${functionName || 'anonymous'})`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1]!;
  if (url.startsWith('node:')) {
    const internal = /^node:(?:internal\/)?([^/]+)/.exec(url);
    return `node:${internal?.[1] ?? url}`;
  }
  const own = /\/dist\/([^/]+\/(?:[^/]+\/)?)?/.exec(url);
  if (own) {
    const rest = url.slice(url.indexOf('/dist/') + 6);
    return `dpip:${rest.split('/').slice(0, -1).join('/') || rest}`;
  }
  return url;
}

function frameName(frame: CallFrame): string {
  const where = frame.url ? ` ${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where}`;
}

const selfByFunction = new Map<string, number>();
const selfByModule = new Map<string, number>();
const inclusive = new Map<string, number>();
const callers = new Map<string, number>();
let total = 0;
let idle = 0;
let elapsed = 0;
for (let index = 0; index < profile.samples.length; index++) {
  const delta = (profile.timeDeltas[index] ?? 0) / 1000;
  elapsed += delta;
  if (elapsed < fromMs) continue;
  const node = byId.get(profile.samples[index]!)!;
  const frame = node.callFrame;
  if (frame.functionName === '(idle)') {
    idle += delta;
    continue;
  }
  total += delta;
  const name = frameName(frame);
  selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + delta);
  const module = moduleOf(frame);
  selfByModule.set(module, (selfByModule.get(module) ?? 0) + delta);
  if (callersOf !== undefined && name.includes(callersOf)) {
    const chain: string[] = [];
    for (let id = parent.get(node.id); id !== undefined && chain.length < 3; id = parent.get(id)) {
      const caller = byId.get(id)!.callFrame;
      if (caller.url.includes('/dist/')) chain.push(frameName(caller));
    }
    const key = chain.join(' < ') || '(none in dist/)';
    callers.set(key, (callers.get(key) ?? 0) + delta);
  }
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const name = frameName(byId.get(id)!.callFrame);
    if (seen.has(name) || (match !== undefined && !name.includes(match))) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
  }
}

const figure = (ms: number): string => (ms / per).toFixed(3).padStart(8);
const unit = per === 1 ? 'ms' : `ms per 1 of ${per}`;
console.log(
  `${file}: ${(elapsed - fromMs).toFixed(0)} ms profiled (after the first ${fromMs} ms), ` +
    `${total.toFixed(0)} ms on the main thread (${figure(total).trim()} ${unit}), idle ${idle.toFixed(0)} ms`,
);
const list = (title: string, entries: Map<string, number>, count: number): void => {
  console.log(`${title} (${unit}, share of the main thread's busy time):`);
  for (const [name, ms] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, count))
    console.log(`${figure(ms)} ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`);
};
list('by module, self time', selfByModule, top);
list('by function, self time', selfByFunction, top);
if (callersOf !== undefined) list(`what led to "${callersOf}" (the nearest DPIP functions)`, callers, top);
list(`by function, inclusive time${match === undefined ? '' : ` (those matching "${match}")`}`, inclusive, top);
