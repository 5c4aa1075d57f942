// The physical limit: one bare process filtering image files with an engine, nothing around it.
// argv: engine filter file... ; prints {ms, cpuMs}: the wall time of the filtering and the CPU time it
// took (all threads: libvips's and jimp's included).
import { readFile } from 'node:fs/promises';
import type { FilterName } from '../common/filters/index.js';
import { sharedEngineThreads } from '../bin/local-workers.js';
import { createEngine } from '../worker/engines/index.js';

const [engineName, filter, ...files] = process.argv.slice(2);
// two bare processes share the cores, as the system's two workers do (BARE_THREADS: another count)
const threads = process.env.BARE_THREADS ? Number(process.env.BARE_THREADS) : sharedEngineThreads(2, 1);
const engine = await createEngine(engineName as 'sharp' | 'jimp', 1, threads);
const inputs = await Promise.all(files.map((file) => readFile(file)));
const started = performance.now();
const cpuBefore = process.cpuUsage();
for (const input of inputs) await engine.apply(filter as FilterName, input);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
await engine.close();
process.stdout.write(`${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
