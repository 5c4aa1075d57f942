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

/** What the dashboard reads of GET /status. */
export interface ServerStatus {
  /** Whether originals may go around the server, through upload slots (object storage only). */
  uploads?: { slots?: boolean };
}

/** POST /uploads: a slot for one original, the PUT that fills it, and where to confirm it. */
export interface UploadSlot {
  image_id: string;
  upload: { method: string; url: string; headers: Record<string, string> };
  confirm: string;
}

/** Which way an original went up: through an upload slot, or through POST /images. */
export type UploadVia = 'slot' | 'api';
