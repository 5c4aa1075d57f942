// The JSON the dashboard reads: the views the server declares in common/views.ts (types only).
export type {
  WorkloadDeleted,
  WorkloadPage,
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
