import { OPERATION_SPECS, type OperationName } from './definitions.js';
import { describeParam, type ParamView } from './params.js';

/** One operation as GET /operations lists it: clients build their forms from it. */
export interface OperationView {
  op: OperationName;
  description: string;
  params: ParamView[];
  /** Only as the last step of a chain. */
  last_only: boolean;
}

export function describeOperations(): OperationView[] {
  return OPERATION_SPECS.map((spec) => ({
    op: spec.name,
    description: spec.description,
    params: Object.entries(spec.params).map(([name, param]) => describeParam(name, param)),
    last_only: spec.lastOnly === true,
  }));
}
