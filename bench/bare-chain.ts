// The physical limit for the chain of BENCHMARKS' operations row: one bare process running a plain sharp
// pipeline (resize to 640 wide, grey, WebP at quality 80) over image files, nothing around it.
// argv: file... ; prints {ms, cpuMs}, as bare-filter.ts does.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';

const files = process.argv.slice(2);
sharp.concurrency(1);
const inputs = await Promise.all(files.map((file) => readFile(file)));
const started = performance.now();
const cpuBefore = process.cpuUsage();
for (const input of inputs) await sharp(input).resize({ width: 640 }).grayscale().webp({ quality: 80 }).toBuffer();
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(`${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
