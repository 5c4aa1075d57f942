import { chainOfFilter, outputFormatOf, type Operation, type OutputFormat } from '../common/operations/index.js';
import type { WorkerRecord, Workload } from './store/index.js';

/** What a worker needs to run a workload's jobs: every operation of its chain, its output format, and every tag. */
export interface JobNeeds {
  /** A workload of operations (not a course filter's): only a worker that runs chains can take it. */
  chain: boolean;
  operations: readonly string[];
  /** The format the chain writes; null: the input's, which every worker writes. */
  format: OutputFormat | null;
  tags: readonly string[];
}

/** The chain a workload runs: its operations, or its course filter's one-step chain. */
export function chainOf(workload: Pick<Workload, 'filter' | 'operations'>): Operation[] {
  if (workload.operations) return workload.operations;
  return chainOfFilter(workload.filter === 'blur' ? 'blur' : 'grayscale');
}

export function needsOf(workload: Pick<Workload, 'filter' | 'operations' | 'tags'>): JobNeeds {
  const chain = chainOf(workload);
  return {
    chain: !!workload.operations,
    operations: [...new Set(chain.map((step) => step.op))].sort(),
    format: outputFormatOf(chain),
    tags: [...new Set(workload.tags)].sort(),
  };
}

/**
 * What a worker can do, from its registration: an older worker that did not say runs its course filters
 * only (it needs a filter name, which a workload of operations does not have), in the input's format.
 */
export interface WorkerCan {
  chains: boolean;
  operations: readonly string[];
  formats: readonly string[];
  tags: readonly string[];
}

/** What a worker record says it can do. */
export function capabilitiesOf(
  record: Pick<WorkerRecord, 'filters' | 'operations' | 'formats'>,
): Omit<WorkerCan, 'tags'> {
  return {
    chains: record.operations !== undefined,
    operations: record.operations ?? record.filters,
    formats: record.formats ?? [],
  };
}

/** Why the worker cannot run jobs with these needs ("encode avif", "run \"sharpen\"", ...), or null when it can. */
export function missing(worker: WorkerCan, needs: JobNeeds): string | null {
  const tag = needs.tags.find((wanted) => !worker.tags.includes(wanted));
  if (tag !== undefined) return `carry the tag "${tag}"`;
  if (needs.chain && !worker.chains) return 'run chains of operations';
  const operation = needs.operations.find((op) => !worker.operations.includes(op));
  if (operation !== undefined) return `run "${operation}"`;
  if (needs.format !== null && !worker.formats.includes(needs.format)) return `encode ${needs.format}`;
  return null;
}
