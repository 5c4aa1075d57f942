// The JSON the dashboard reads: the views the server declares in common/views.ts (types only).
import type { OperationView } from '../../common/views.js';

export type {
  WorkloadDeleted,
  WorkloadPage,
  ImageView as ImageItem,
  JobStateView as JobState,
  Operation,
  OperationView,
  OutputFormat,
  ParamView,
  ResourceSample as Sample,
  WorkerView as Worker,
  WorkloadStatus,
  WorkloadView as Workload,
} from '../../common/views.js';

export interface Session {
  user: string;
  token: string;
}

/** GET /operations: every operation a chain may hold, and how many steps it may have. */
export interface OperationCatalogue {
  operations: OperationView[];
  max_steps: number;
}

/** A parameter's value as a step sends it. */
export type ParamValue = string | number | boolean;

/** A step as POST /workloads takes it: the operation and the parameters given (the server fills in the rest). */
export type StepRequest = { op: string } & Record<string, ParamValue>;
