import blur from './blur.js';
import grayscale from './grayscale.js';
import type { Filter } from './types.js';

export type { Filter } from './types.js';

// The single list of filters: adding one = a new module + one line here.
const FILTER_LIST = [grayscale, blur] as const;

export type FilterName = (typeof FILTER_LIST)[number]['name'];

export const FILTERS: Readonly<Record<FilterName, Filter>> = Object.freeze(
  Object.fromEntries(FILTER_LIST.map((filter) => [filter.name, filter])) as Record<FilterName, Filter>,
);

export const FILTER_NAMES: readonly FilterName[] = Object.freeze(FILTER_LIST.map((filter) => filter.name));

export function isFilterName(s: string): s is FilterName {
  return Object.hasOwn(FILTERS, s);
}

export function getFilter(name: FilterName): Filter {
  return FILTERS[name];
}
