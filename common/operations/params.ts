// The parameters an operation takes, declared as data: one declaration checks a request (with messages
// that name the step and what is allowed), fills in the defaults, and describes the operation to clients
// (GET /operations).

export interface IntParam {
  kind: 'int';
  min: number;
  max: number;
  /** Absent: the parameter is optional with no default (see the operation's own check), or required. */
  default?: number;
  required?: boolean;
  description: string;
}

export interface NumberParam {
  kind: 'number';
  min: number;
  max: number;
  default: number;
  description: string;
}

export interface EnumParam {
  kind: 'enum';
  values: readonly (string | number)[];
  default?: string | number;
  required?: boolean;
  description: string;
}

export interface BoolParam {
  kind: 'bool';
  default: boolean;
  description: string;
}

export type Param = IntParam | NumberParam | EnumParam | BoolParam;

export type ParamValue = number | string | boolean | null;

/** Why a value does not fit its parameter, in words a user can act on; null when it fits. */
export function paramProblem(name: string, param: Param, value: unknown): string | null {
  switch (param.kind) {
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= param.min && value <= param.max
        ? null
        : `"${name}" must be a whole number from ${param.min} to ${param.max}`;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) && value >= param.min && value <= param.max
        ? null
        : `"${name}" must be a number from ${param.min} to ${param.max}`;
    case 'enum':
      return param.values.includes(value as string | number)
        ? null
        : `"${name}" must be one of ${param.values.map((allowed) => JSON.stringify(allowed)).join(', ')}`;
    case 'bool':
      return typeof value === 'boolean' ? null : `"${name}" must be true or false`;
  }
}

/** Whether the parameter must be given (it has no default and is marked required). */
export function isRequired(param: Param): boolean {
  return (param.kind === 'int' || param.kind === 'enum') && param.required === true;
}

/** The parameter as GET /operations describes it. */
export interface ParamView {
  name: string;
  type: 'integer' | 'number' | 'enum' | 'boolean';
  description: string;
  required: boolean;
  default?: ParamValue;
  minimum?: number;
  maximum?: number;
  values?: readonly (string | number)[];
}

const TYPE_NAMES = { int: 'integer', number: 'number', enum: 'enum', bool: 'boolean' } as const;

export function describeParam(name: string, param: Param): ParamView {
  const view: ParamView = {
    name,
    type: TYPE_NAMES[param.kind],
    description: param.description,
    required: isRequired(param),
  };
  if (param.default !== undefined) view.default = param.default;
  if (param.kind === 'int' || param.kind === 'number') {
    view.minimum = param.min;
    view.maximum = param.max;
  }
  if (param.kind === 'enum') view.values = param.values;
  return view;
}
