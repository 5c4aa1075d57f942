// One measurement in a fresh process, so its peak RSS is its own: engine, filter, image file, runs.
import { readFile } from 'node:fs/promises';
import { createEngine } from '../worker/engines/index.js';
import type { FilterName } from '../common/filters/index.js';

const [engineName, filter, file, runsText] = process.argv.slice(2);
const input = await readFile(file!);
const engine = await createEngine(engineName as 'sharp' | 'jimp', 1);
const runs = Number(runsText ?? 3);
await engine.apply(filter as FilterName, input); // warm-up: module loading and JIT are not the filter's cost
const started = performance.now();
for (let run = 0; run < runs; run++) await engine.apply(filter as FilterName, input);
const ms = (performance.now() - started) / runs;
await engine.close();
process.stdout.write(`${JSON.stringify({ ms, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
