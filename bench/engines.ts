// jimp vs sharp, per filter and image size: time per image and the peak RSS of a worker-like process.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { makeTestImage } from '../test/helpers/images.js';
import { makeDirs } from '../test/helpers/system.js';

const run = promisify(execFile);
const PROBE = fileURLToPath(new URL('./engine-probe.js', import.meta.url));
const SIZES: [number, number][] = [
  [640, 480],
  [1920, 1080],
  [4000, 3000],
];
const RSS_LIMIT_MB = 400;

const RUNS = '10'; // a worker's peak memory shows over many frames, when the allocator's free lists have grown
const TUNED_ENV = withMallocTunables(process.env);
const DEFAULT_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'GLIBC_TUNABLES'));

async function probe(
  engine: string,
  filter: string,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<{ ms: number; peakRssMb: number }> {
  const { stdout } = await run(process.execPath, [PROBE, engine, filter, file, RUNS], { maxBuffer: 1 << 20, env });
  return JSON.parse(stdout) as { ms: number; peakRssMb: number };
}

const dirs = await makeDirs();
console.log(
  `engines: time per image (mean of ${RUNS} after a warm-up) and peak RSS of the process, with the malloc tunables`,
);
console.log("(as `npm start` and `npm run worker` run) and with glibc malloc's defaults; JPEG input");
console.log(
  'engine  filter     size        ms/image   peak RSS MB   RSS / 400 MB limit   peak RSS MB, malloc defaults',
);
let worstRatio = 0;
let worstDefaultRatio = 0;
for (const [width, height] of SIZES) {
  const file = path.join(dirs.root, `${width}x${height}.jpg`);
  await writeFile(file, await makeTestImage(width, height, 'image/jpeg', 7));
  for (const engine of ['sharp', 'jimp']) {
    for (const filter of ['grayscale', 'blur']) {
      const { ms, peakRssMb } = await probe(engine, filter, file, TUNED_ENV);
      const untuned = await probe(engine, filter, file, DEFAULT_ENV);
      const ratio = peakRssMb / RSS_LIMIT_MB;
      if (width === 4000) {
        worstRatio = Math.max(worstRatio, ratio);
        worstDefaultRatio = Math.max(worstDefaultRatio, untuned.peakRssMb / RSS_LIMIT_MB);
      }
      console.log(
        `${engine.padEnd(7)} ${filter.padEnd(10)} ${`${width}x${height}`.padEnd(11)} ${ms.toFixed(1).padStart(8)}   ` +
          `${peakRssMb.toFixed(0).padStart(11)}   ${ratio.toFixed(2).padStart(18)}   ` +
          `${untuned.peakRssMb.toFixed(0).padStart(12)}`,
      );
    }
  }
}
console.log(
  `worst peak RSS on 4000x3000 / limit: ${worstRatio.toFixed(2)} (target <= 1.00); ` +
    `with malloc defaults ${worstDefaultRatio.toFixed(2)}`,
);
await dirs.remove();
