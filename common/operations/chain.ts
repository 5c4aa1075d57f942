import { OPERATION_SPECS, specOf, type Operation, type OutputFormat, type Size } from './definitions.js';
import { isRequired, paramProblem, type ParamValue } from './params.js';

/** The longest chain a workload may have. */
export const MAX_STEPS = 16;

export type ChainResult = { ok: true; chain: Operation[] } | { ok: false; error: string };

const KNOWN = OPERATION_SPECS.map((spec) => spec.name).join(', ');

function describeStep(index: number, name: string): string {
  return `step ${index + 1} (${name})`;
}

/**
 * Reads a chain as a client sent it: a list of `{"op": NAME, ...parameters}`. Every problem is named with
 * its step and what is allowed; a valid chain comes back with every default filled in.
 */
export function parseChain(input: unknown): ChainResult {
  if (!Array.isArray(input)) return { ok: false, error: '"operations" must be a list of steps: [{"op": ...}, ...]' };
  if (input.length === 0) return { ok: false, error: '"operations" needs at least one step' };
  if (input.length > MAX_STEPS) return { ok: false, error: `"operations" takes at most ${MAX_STEPS} steps` };
  const chain: Operation[] = [];
  for (const [index, raw] of input.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      return { ok: false, error: `step ${index + 1} must be an object {"op": ..., ...parameters}` };
    const fields = raw as Record<string, unknown>;
    const name = fields.op;
    const spec = typeof name === 'string' ? specOf(name) : undefined;
    if (!spec)
      return {
        ok: false,
        error:
          `step ${index + 1}: unknown operation ${JSON.stringify(name ?? null)?.slice(0, 64)}: ` +
          `use one of ${KNOWN}`,
      };
    const where = describeStep(index, spec.name);
    const step: Record<string, ParamValue> = { op: spec.name };
    for (const key of Object.keys(fields)) {
      if (key !== 'op' && !Object.hasOwn(spec.params, key)) {
        const allowed = Object.keys(spec.params);
        return {
          ok: false,
          error:
            `${where}: unknown parameter "${key.slice(0, 64)}": ` +
            (allowed.length ? `it takes ${allowed.map((param) => `"${param}"`).join(', ')}` : 'it takes none'),
        };
      }
    }
    for (const [key, param] of Object.entries(spec.params)) {
      const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (value === undefined || value === null) {
        if (isRequired(param)) return { ok: false, error: `${where}: "${key}" is required` };
        step[key] = param.default ?? null;
        continue;
      }
      const problem = paramProblem(key, param, value);
      if (problem) return { ok: false, error: `${where}: ${problem}` };
      step[key] = value as ParamValue;
    }
    const operation = step as unknown as Operation;
    const problem = spec.check?.(operation);
    if (problem) return { ok: false, error: `${where}: ${problem}` };
    if (spec.lastOnly && index !== input.length - 1)
      return { ok: false, error: `${where}: "${spec.name}" may only be the last step` };
    chain.push(operation);
  }
  return { ok: true, chain };
}

/** The size after each step of the chain, or the first step that cannot apply (with why). */
export function chainGeometry(
  chain: readonly Operation[],
  input: Size,
  maxPixels?: number,
): { ok: true; sizes: Size[]; output: Size } | { ok: false; error: string } {
  const sizes: Size[] = [];
  let size = input;
  for (const [index, step] of chain.entries()) {
    const spec = specOf(step.op);
    if (!spec) return { ok: false, error: `step ${index + 1}: unknown operation "${step.op}"` };
    const next = spec.geometry(step, size);
    if (typeof next === 'string') return { ok: false, error: `${describeStep(index, step.op)}: ${next}` };
    if (maxPixels !== undefined && next.width * next.height > maxPixels)
      return {
        ok: false,
        error:
          `${describeStep(index, step.op)} makes a ${next.width}x${next.height} image, more than the ` +
          `${maxPixels} pixels allowed`,
      };
    sizes.push(next);
    size = next;
  }
  return { ok: true, sizes, output: size };
}

/** The format the chain writes, or null: the input's. */
export function outputFormatOf(chain: readonly Operation[]): OutputFormat | null {
  const last = chain.at(-1);
  return last?.op === 'format' ? last.type : null;
}

/** The course filters, as the one-step chains they are. */
export function chainOfFilter(filter: 'grayscale' | 'blur'): Operation[] {
  const parsed = parseChain([{ op: filter }]);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.chain;
}

/** Whether every step's operation, and the output format, are among what a worker can do. */
export function canRun(
  chain: readonly Operation[],
  can: { operations: readonly string[]; formats: readonly string[] },
): string | null {
  for (const step of chain) {
    if (!can.operations.includes(step.op)) return `run "${step.op}"`;
    if (step.op === 'format' && !can.formats.includes(step.type)) return `encode ${step.type}`;
  }
  return null;
}
