// Image operations and chains of them: what each does and takes, how a client's chain is read and
// checked, the sizes it makes, and what a worker must be able to do to run it. Shared by the API, the
// scheduler and the workers; no imports beyond this folder, so the dashboard can read the types.
export {
  COURSE_BLUR_SIGMA,
  FITS,
  MAX_SIDE,
  OPERATION_SPECS,
  OUTPUT_FORMATS,
  resizedSize,
  resizePlan,
  specOf,
  type Fit,
  type Operation,
  type OperationName,
  type OperationSpec,
  type OutputFormat,
  type Size,
} from './definitions.js';
export {
  canRun,
  chainGeometry,
  chainOfFilter,
  MAX_STEPS,
  outputFormatOf,
  parseChain,
  type ChainResult,
} from './chain.js';
export { describeParam, type Param, type ParamView } from './params.js';
export { describeOperations, type OperationView } from './describe.js';
