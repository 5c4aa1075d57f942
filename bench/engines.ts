// jimp vs sharp, per filter and image size: time per image and the peak RSS of a worker-like process.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTestImage } from '../test/helpers/images.js';
import { makeDirs } from '../test/helpers/system.js';

const run = promisify(execFile);
const PROBE = fileURLToPath(new URL('./engine-probe.js', import.meta.url));
const SIZES: [number, number][] = [[640, 480], [1920, 1080], [4000, 3000]];
const RSS_LIMIT_MB = 400;

const dirs = await makeDirs();
console.log('engines: time per image (mean of 3 after a warm-up) and peak RSS of the process; JPEG input');
console.log('engine  filter     size        ms/image   peak RSS MB   RSS / 400 MB limit');
let worstRatio = 0;
for (const [width, height] of SIZES) {
  const file = path.join(dirs.root, `${width}x${height}.jpg`);
  await writeFile(file, await makeTestImage(width, height, 'image/jpeg', 7));
  for (const engine of ['sharp', 'jimp']) {
    for (const filter of ['grayscale', 'blur']) {
      const { stdout } = await run(process.execPath, [PROBE, engine, filter, file, '3'], { maxBuffer: 1 << 20 });
      const { ms, peakRssMb } = JSON.parse(stdout) as { ms: number; peakRssMb: number };
      const ratio = peakRssMb / RSS_LIMIT_MB;
      if (width === 4000) worstRatio = Math.max(worstRatio, ratio);
      console.log(`${engine.padEnd(7)} ${filter.padEnd(10)} ${`${width}x${height}`.padEnd(11)} ${ms.toFixed(1).padStart(8)}   ${peakRssMb.toFixed(0).padStart(11)}   ${ratio.toFixed(2).padStart(6)}`);
    }
  }
}
console.log(`worst peak RSS on 4000x3000 / limit: ${worstRatio.toFixed(2)} (target <= 1.00)`);
await dirs.remove();
