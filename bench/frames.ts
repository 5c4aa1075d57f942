// The "40 frames" run: npm start's system (server + two local workers) on temp dirs, a user who
// registers, logs in with Basic auth, creates workloads, uploads 40 1280x720 PNG frames one by one
// and checks every filtered frame. Prints the time per engine and filter.
import path from 'node:path';
import { TestClient } from '../test/helpers/api.js';
import { decodeRgba, highFrequencyEnergy, isGray, makeTestImage } from '../test/helpers/images.js';
import { freePorts } from '../test/helpers/ports.js';
import { DIST_BIN, spawnNode, waitFor } from '../test/helpers/processes.js';
import { makeDirs } from '../test/helpers/system.js';

const FRAMES = Number(process.env.FRAMES ?? 40);
const [WIDTH, HEIGHT] = [1280, 720];

async function runEngine(engine: 'sharp' | 'jimp', frames: Buffer[]): Promise<void> {
  const dirs = await makeDirs();
  const controllerPort = await freePorts(3);
  const apiPort = await freePorts();
  const server = spawnNode(path.join(DIST_BIN, 'dpip.js'), [
    '--port',
    String(apiPort),
    '--controller-port',
    String(controllerPort),
    '--data-dir',
    dirs.dataDir,
    '--images-dir',
    dirs.imagesDir,
    '--engine',
    engine,
    '--log-level',
    'warn',
  ]);
  const url = `http://127.0.0.1:${apiPort}`;
  try {
    await waitFor('server', async () => (await fetch(`${url}/status`)).status === 401, 20_000);
    await fetch(`${url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bench', password: 'bench-pw' }),
    });
    const client = await TestClient.login(url, 'bench', 'bench-pw');
    await waitFor('two workers', async () => {
      const status = (await (await fetch(`${url}/status`, { headers: client.headers() })).json()) as {
        workers: { alive: number };
      };
      return status.workers.alive >= 2;
    });
    for (const filter of ['grayscale', 'blur'] as const) {
      const workload = filter === 'grayscale' ? await client.createWorkload() : await client.createWorkload({ filter });
      const started = performance.now();
      for (const [index, frame] of frames.entries()) {
        const upload = await client.upload(workload.workload_id, frame, `${index}.png`, 'image/png');
        if (upload.status !== 201) throw new Error(`upload ${index}: ${JSON.stringify(upload.body)}`);
      }
      const uploaded = performance.now();
      const done = await client.waitForCompletion(workload.workload_id, 600_000);
      const finished = performance.now();
      if (done.filtered_images.length !== frames.length || done.failed_jobs > 0)
        throw new Error(`incomplete: ${JSON.stringify(done)}`);
      let checked = 0;
      for (const [index, id] of done.filtered_images.entries()) {
        const image = await decodeRgba((await client.download(id)).data);
        const ok =
          image.width === WIDTH &&
          image.height === HEIGHT &&
          (filter === 'grayscale'
            ? isGray(image)
            : highFrequencyEnergy(image) < 0.7 * highFrequencyEnergy(await decodeRgba(frames[index]!)));
        if (!ok) throw new Error(`frame ${index} is not a correct ${filter} result`);
        checked += 1;
      }
      const seconds = (finished - started) / 1000;
      console.log(
        `${engine.padEnd(5)} ${filter.padEnd(9)} ${frames.length} frames ${WIDTH}x${HEIGHT}: ` +
          `${seconds.toFixed(2)} s end to end (${(frames.length / seconds).toFixed(1)} frames/s; ` +
          `uploads took ${((uploaded - started) / 1000).toFixed(2)} s), ${checked} checked correct`,
      );
    }
  } finally {
    await server.kill('SIGTERM');
    await dirs.remove();
  }
}

const frames: Buffer[] = [];
for (let index = 0; index < FRAMES; index++) frames.push(await makeTestImage(WIDTH, HEIGHT, 'image/png', index + 1));
for (const engine of ['sharp', 'jimp'] as const) await runEngine(engine, frames);
