// What the worker's Slots tests hand it: assignments, and an engine the test never reaches.
import type { Assignment } from '../../common/protocol.js';
import type { FilterEngine } from '../../worker/engines/index.js';

/** A grayscale assignment of `id`, of the given size (unknown when absent). */
export function assignment(id: string, width?: number, height?: number): Assignment {
  return {
    token: 't',
    job_id: id,
    lease_id: `lease-${id}`,
    image_id: `image-${id}`,
    workload_id: 'w',
    filter: 'grayscale',
    ...(width === undefined || height === undefined ? {} : { width, height }),
  };
}

/** An engine whose work the test never reaches (its jobs stop in their download). */
export function unreachedEngine(name: FilterEngine['name']): FilterEngine {
  return {
    name,
    capabilities: { operations: ['grayscale'], formats: ['png', 'jpeg'] },
    run: () => Promise.reject(new Error('not called')),
    apply: () => Promise.reject(new Error('not called')),
    close: async () => undefined,
  };
}
