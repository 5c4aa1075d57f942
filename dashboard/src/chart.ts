import { svg } from './dom.js';
import type { Sample } from './types.js';

const WIDTH = 240;
const HEIGHT = 56;

function line(samples: Sample[], value: (sample: Sample) => number, from: number, span: number): string {
  return samples
    .map((sample) => {
      const x = span > 0 ? ((sample.t - from) / span) * WIDTH : WIDTH;
      const y = HEIGHT - Math.max(0, Math.min(1, value(sample))) * (HEIGHT - 2) - 1;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

/** CPU (percent) and memory (fraction) over the samples' time span, both on a 0-100% scale. */
export function resourceChart(samples: Sample[]): SVGElement {
  const from = samples[0]?.t ?? 0;
  const span = (samples[samples.length - 1]?.t ?? 0) - from;
  const grid = [0.25, 0.5, 0.75].map((level) =>
    svg('line', { x1: 0, x2: WIDTH, y1: HEIGHT * level, y2: HEIGHT * level, class: 'grid' }),
  );
  const chart = svg(
    'svg',
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: 'none',
      class: 'chart',
      role: 'img',
      'aria-label': 'CPU and memory over time',
    },
    ...grid,
    svg('polyline', { points: line(samples, (sample) => sample.mem_used, from, span), class: 'mem' }),
    svg('polyline', { points: line(samples, (sample) => sample.cpu_load / 100, from, span), class: 'cpu' }),
  );
  return chart;
}
