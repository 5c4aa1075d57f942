// The JSON the dashboard reads: the views the server declares in common/views.ts (types only).
import type { WorkloadView } from '../../common/views.js';

export type {
  ImageView as ImageItem,
  JobStateView as JobState,
  ResourceSample as Sample,
  WorkerView as Worker,
  WorkloadStatus,
  WorkloadView as Workload,
} from '../../common/views.js';

export interface Session {
  user: string;
  token: string;
}

/** One page of GET /workloads: newest first, and the cursor of the next (older) page, null on the last. */
export interface WorkloadPage {
  workloads: WorkloadView[];
  next_cursor: string | null;
}

/** The answer of DELETE /workloads/{id}: what went with it. */
export interface WorkloadDeleted {
  workload_id: string;
  workload_name: string;
  deleted: true;
  removed_images: number;
  removed_bytes: number;
  cancelled_jobs: number;
}
