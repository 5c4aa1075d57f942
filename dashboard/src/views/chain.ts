import { h } from '../dom.js';
import type { Operation, OutputFormat, Workload } from '../types.js';

/** Format names as people write them. */
export const FORMAT_NAMES: Record<OutputFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', avif: 'AVIF' };

function side(value: number | null): string {
  return value === null ? 'auto' : String(value);
}

/** One step in a few characters: "resize 640×auto", "blur σ2", "webp q80". */
function stepText(step: Operation): string {
  switch (step.op) {
    case 'blur':
    case 'sharpen':
      return `${step.op} σ${Number(step.sigma.toFixed(2))}`;
    case 'resize': {
      // the fit matters with both sides, or to stretch one
      const fit = (step.width !== null && step.height !== null) || step.fit === 'fill' ? ` ${step.fit}` : '';
      return `resize ${side(step.width)}×${side(step.height)}${fit}${step.enlarge ? ' enlarge' : ''}`;
    }
    case 'thumbnail':
      return `thumbnail ${step.size}`;
    case 'crop':
      return `crop ${step.width}×${step.height} at ${step.left},${step.top}`;
    case 'rotate':
      return `rotate ${step.angle}°`;
    case 'format':
      return step.type === 'png' ? FORMAT_NAMES.png : `${FORMAT_NAMES[step.type]} q${step.quality}`;
    default:
      return step.op;
  }
}

/** A chain in one line: its steps, in order. */
export function chainText(chain: readonly Operation[]): string {
  return chain.map(stepText).join(' → ');
}

/**
 * What a workload does to its images: its course filter, or its chain (compactly; every parameter in the
 * tooltip).
 */
export function processing(workload: Workload, filterPrefix = ''): HTMLElement {
  const chain = workload.filter === null;
  return h(
    'span',
    {
      class: chain ? 'processing chain' : 'processing',
      'data-testid': 'processing',
      title: chain ? workload.operations.map((step) => JSON.stringify(step)).join('\n') : undefined,
    },
    chain ? chainText(workload.operations) : `${filterPrefix}${workload.filter}`,
  );
}
