import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import {
  decodeRgba,
  highFrequencyEnergy,
  isGray,
  makeTestImage,
  sniffMime,
  type TestImageMime,
} from '../helpers/images.js';
import { killAll } from '../helpers/processes.js';
import { makeDirs, spawnServer, spawnWorker, type TestDirs } from '../helpers/system.js';

const IMAGES_PER_WORKLOAD = 10;

interface Original {
  data: Buffer;
  mime: TestImageMime;
  width: number;
  height: number;
}

async function makeOriginals(count: number, seed: number): Promise<Original[]> {
  const originals: Original[] = [];
  for (let index = 0; index < count; index++) {
    const mime: TestImageMime = index % 2 === 0 ? 'image/png' : 'image/jpeg';
    const width = 160 + 16 * index;
    const height = 120 + 8 * index;
    originals.push({ data: await makeTestImage(width, height, mime, seed + index), mime, width, height });
  }
  return originals;
}

for (const engine of ['sharp', 'jimp'] as const) {
  describe(`end to end with two ${engine} worker processes`, function () {
    this.timeout(180_000);
    let dirs: TestDirs;
    let client: TestClient;

    before(async () => {
      dirs = await makeDirs();
      const server = await spawnServer(dirs);
      spawnWorker({ controllerPort: server.controllerPort, name: `${engine}-a`, engine, slots: 2 });
      spawnWorker({ controllerPort: server.controllerPort, name: `${engine}-b`, engine, slots: 2 });
      client = await TestClient.login(server.url, 'alice', 'alice-pw');
    });

    after(async () => {
      await killAll();
      await dirs.remove();
    });

    for (const filter of ['grayscale', 'blur'] as const) {
      it(`filters a workload of ${IMAGES_PER_WORKLOAD} PNG and JPEG images with ${filter}`, async () => {
        const workload = await client.createWorkload({ filter });
        const originals = await makeOriginals(IMAGES_PER_WORKLOAD, filter === 'grayscale' ? 1 : 100);
        for (const [index, original] of originals.entries()) {
          const upload = await client.upload(
            workload.workload_id,
            original.data,
            `${index}.${original.mime === 'image/png' ? 'png' : 'jpg'}`,
            original.mime,
          );
          expect(upload.status, JSON.stringify(upload.body)).to.equal(201);
        }
        const done = await client.waitForCompletion(workload.workload_id, 120_000);
        expect(done.failed_jobs, JSON.stringify(done.failures)).to.equal(0);
        expect(done.filtered_images).to.have.length(IMAGES_PER_WORKLOAD);
        expect(new Set(done.filtered_images).size).to.equal(IMAGES_PER_WORKLOAD);

        // filtered_images keeps upload order: the i-th result belongs to the i-th original
        for (const [index, imageId] of done.filtered_images.entries()) {
          const original = originals[index]!;
          const result = await client.download(imageId);
          expect(result.status).to.equal(200);
          expect(result.type).to.equal(original.mime);
          expect(sniffMime(result.data)).to.equal(original.mime);
          const filtered = await decodeRgba(result.data);
          expect([filtered.width, filtered.height]).to.deep.equal([original.width, original.height]);
          if (filter === 'grayscale') {
            expect(isGray(filtered, original.mime === 'image/png' ? 0 : 2), `image ${index} is gray`).to.equal(true);
          } else {
            const before = highFrequencyEnergy(await decodeRgba(original.data));
            expect(highFrequencyEnergy(filtered), `image ${index} is blurred`).to.be.below(before * 0.7);
          }
        }
      });
    }
  });
}
