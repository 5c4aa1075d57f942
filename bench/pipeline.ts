// Pipeline efficiency: 1920x1080 JPEGs through the whole system (server + two local workers) vs the
// same engine filtering the same images in two bare processes, the physical limit of this machine.
// Two kinds of frames: photo-like (about 0.3 MB, the size of a camera frame) and pure noise (about
// 3.5 MB, the worst case for moving bytes). Env: IMAGES (200), ENGINES (sharp,jimp), KINDS (photo,noise),
// WORK (blur, or chain: resize to 640 wide, grayscale, WebP at quality 80, against a bare sharp pipeline
// doing the same; sharp only), ROUNDS (3): the images run ROUNDS times on one running system, each round between
// two bare runs, and the efficiency is the median of the rounds' ratios (bench/paired.ts).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withMallocTunables } from '../common/malloc-tunables.js';
import { makePhotoLikeImage, makeTestImage } from '../test/helpers/images.js';
import { makeDirs } from '../test/helpers/system.js';
import { describeRatios, median, pairedRuns, type Rate } from './paired.js';
import {
  childPids,
  CpuMeter,
  describeUploadForm,
  removeRunDirs,
  startSystem,
  uploadAll,
  uploadForm,
  waitDone,
} from './system-run.js';

const run = promisify(execFile);
const BARE = fileURLToPath(new URL('./bare-filter.js', import.meta.url));
const BARE_CHAIN = fileURLToPath(new URL('./bare-chain.js', import.meta.url));
const WORK = process.env.WORK === 'chain' ? 'chain' : 'blur';
const WORK_NAME = WORK === 'chain' ? 'chain resize 640 wide, grayscale, WebP q80' : 'filter blur';
const CHAIN = [{ op: 'resize', width: 640 }, { op: 'grayscale' }, { op: 'format', type: 'webp', quality: 80 }];
const COUNT = Number(process.env.IMAGES ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DISTINCT = 20; // distinct frames, cycled: generating 200 large JPEGs would dominate the run
// the bare processes get the malloc tunables the workers run with: the limit is the engine at its best
const BARE_ENV = withMallocTunables(process.env);
const TARGET = { sharp: 0.85, jimp: 0.95 } as const;
const engines = (process.env.ENGINES ?? (WORK === 'chain' ? 'sharp' : 'sharp,jimp')).split(',') as ('sharp' | 'jimp')[];
const kinds = (process.env.KINDS ?? 'photo,noise').split(',') as ('photo' | 'noise')[];
const generate = {
  photo: (seed: number) => makePhotoLikeImage(1920, 1080, seed),
  noise: (seed: number) => makeTestImage(1920, 1080, 'image/jpeg', seed),
};

const dirs = await makeDirs();
const form = uploadForm();
console.log(
  `pipeline: ${COUNT} 1920x1080 JPEGs, ${WORK_NAME}, two workers vs two bare processes, ` +
    `all with the malloc tunables; ${describeUploadForm(form)}`,
);
for (const kind of kinds) {
  const frames: Buffer[] = [];
  const files: string[] = [];
  for (let index = 0; index < DISTINCT; index++) {
    frames.push(await generate[kind](index + 1));
    files.push(path.join(dirs.root, `${kind}-${index}.jpg`));
    await writeFile(files[index]!, frames[index]!);
  }
  const images = Array.from({ length: COUNT }, (_, index) => frames[index % DISTINCT]!);
  const imageFiles = Array.from({ length: COUNT }, (_, index) => files[index % DISTINCT]!);
  const averageKb = frames.reduce((sum, frame) => sum + frame.length, 0) / frames.length / 1024;
  console.log(`${kind} frames, ${averageKb.toFixed(0)} KB on average:`);

  for (const engine of engines) {
    const half = Math.ceil(COUNT / 2);
    const bareRun = async (): Promise<Rate> => {
      const bareStart = performance.now();
      const bare = await Promise.all(
        [imageFiles.slice(0, half), imageFiles.slice(half)].map((part) =>
          WORK === 'chain'
            ? run(process.execPath, [BARE_CHAIN, ...part], { env: BARE_ENV })
            : run(process.execPath, [BARE, engine, 'blur', ...part], { env: BARE_ENV }),
        ),
      );
      const rate = COUNT / ((performance.now() - bareStart) / 1000);
      return {
        rate,
        cpuPerImage: bare.reduce((sum, { stdout }) => sum + (JSON.parse(stdout) as { cpuMs: number }).cpuMs, 0) / COUNT,
      };
    };

    const system = await startSystem(engine, 2);
    try {
      // the server, each worker, and this client, summed over the counted rounds
      const meter = new CpuMeter([system.serverPid, ...(await childPids(system.serverPid))]);
      const round = async (counted: boolean): Promise<Rate> => {
        const workload = await system.client.createWorkload(
          WORK === 'chain' ? { operations: CHAIN } : { filter: 'blur' },
        );
        const spent = await meter.measure(counted, async () => {
          const started = performance.now();
          await uploadAll(system.client, workload.workload_id, images, 'image/jpeg', 4, form);
          return (COUNT / ((await waitDone(system.client, workload.workload_id, COUNT)) - started)) * 1000;
        });
        const cpu = spent.processes.reduce((sum, value) => sum + value, spent.client);
        return { rate: spent.value, cpuPerImage: cpu / COUNT };
      };
      const paired = await pairedRuns(ROUNDS, bareRun, round);
      const perImage = (ms: number): string => (ms / (COUNT * ROUNDS)).toFixed(1);
      const rates = (runs: Rate[]): string => runs.map((run) => run.rate.toFixed(2)).join(', ');
      console.log(
        `  ${engine.padEnd(5)} CPU ms per image: server ${perImage(meter.processes[0]!)}, ` +
          `workers ${meter.processes.slice(1).map(perImage).join(' + ')}, ` +
          `this client ${perImage(meter.client)}`,
      );
      console.log(
        `  ${engine.padEnd(5)} bare img/s, in order: ${rates(paired.bare)}; the system's between them: ` +
          `${rates(paired.system)}`,
      );
      console.log(
        `  ${engine.padEnd(5)} system ${median(paired.system.map((run) => run.rate)).toFixed(2)} img/s end to end ` +
          `(median): efficiency ${describeRatios(paired.ratios)} (target >= ${TARGET[engine]})`,
      );
      const cpu = (runs: Rate[]): string => median(runs.map((run) => run.cpuPerImage)).toFixed(1);
      console.log(
        `  ${engine.padEnd(5)} CPU per image: bare ${cpu(paired.bare)} ms, whole system ${cpu(paired.system)} ms: ` +
          `CPU efficiency ${describeRatios(paired.cpuRatios)}`,
      );
    } finally {
      await system.stop();
    }
  }
}
await removeRunDirs();
await dirs.remove();
