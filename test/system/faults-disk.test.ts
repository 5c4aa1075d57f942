// A full disk: the data and images folders on a real, small tmpfs. Every upload is answered 201 or
// 507 (never 500); what was answered 201 survives a SIGKILL and a restart, byte for byte; what was
// refused leaves nothing (no record, no job, no file); the server recovers by itself once space
// returns; uploads are refused below the free-space reserve before the disk is full. Needs root (to
// mount); skipped with a message where mounting is not allowed.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { killAll } from '../helpers/processes.js';
import { makeDirs, spawnServer, type TestDirs } from '../helpers/system.js';

function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'dpip-test-disk', dir], { stdio: 'pipe' });
    return null;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0]! : String(error);
  }
}

function resizeTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: 'pipe' });
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    // not mounted
  }
}

interface Sent {
  status: number;
  imageId?: string;
  bytes: Buffer;
  message?: string;
}

describe('faults: a full disk', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let disk: string;

  before(async function () {
    dirs = await makeDirs();
    disk = path.join(dirs.root, 'disk');
    await mkdir(disk);
    const refused = mountTmpfs(disk, '256k');
    if (refused) {
      console.log(`  skipped: cannot mount a tmpfs here (${refused}); the full-disk tests need root`);
      this.skip();
    }
    dirs = { ...dirs, dataDir: path.join(disk, 'data'), imagesDir: path.join(disk, 'images') };
  });

  after(async () => {
    await killAll();
    if (disk) unmount(disk);
    await dirs?.remove();
  });

  async function send(client: TestClient, workloadId: string, seed: number): Promise<Sent> {
    const bytes = await makeTestImage(40, 40, 'image/png', seed);
    const { status, body } = await client.upload(workloadId, bytes, `frame-${seed}.png`, 'image/png');
    return { status, imageId: body.image_id, bytes, message: body.error?.message };
  }

  it('answers 201 or 507, keeps every 201 across a SIGKILL, keeps nothing of a 507, and recovers', async () => {
    const first = await spawnServer(dirs, ['--min-free-disk', '0']);
    const alice = await TestClient.login(first.url, 'alice', 'alice-pw');
    const workload = await alice.createWorkload({ workload_name: 'full-disk' });
    const sent: Sent[] = [];
    for (let seed = 1; seed <= 200 && sent.filter((one) => one.status === 507).length < 8; seed++) {
      sent.push(await send(alice, workload.workload_id, seed));
    }
    const statuses = [...new Set(sent.map((one) => one.status))].sort();
    expect(statuses, 'every upload is answered 201 or 507').to.deep.equal([201, 507]);
    const full = sent.find((one) => one.status === 507);
    expect(full?.message).to.match(/disk is full/);
    const acknowledged = (): Sent[] => sent.filter((one) => one.status === 201);
    expect((await alice.workload(workload.workload_id)).total_images, 'only what was answered 201 is listed').to.equal(
      acknowledged().length,
    );

    // space comes back: the server takes uploads again by itself
    resizeTmpfs(disk, '4m');
    for (let seed = 1001; seed <= 1005; seed++) {
      const after = await send(alice, workload.workload_id, seed);
      expect(after.status, after.message).to.equal(201);
      sent.push(after);
    }

    await first.process.kill('SIGKILL');
    const second = await spawnServer(dirs, ['--min-free-disk', '0']);
    const again = await TestClient.login(second.url, 'alice', 'alice-pw');
    const view = await again.workload(workload.workload_id);
    expect(view.total_images, 'every acknowledged upload, and nothing else').to.equal(acknowledged().length);
    for (const one of acknowledged()) {
      const download = await again.download(one.imageId!);
      expect(download.status).to.equal(200);
      expect(download.data.equals(one.bytes), `image ${one.imageId} is the bytes uploaded`).to.equal(true);
    }
    const files = await readdir(path.join(dirs.imagesDir, 'full-disk'));
    expect(files.length, 'one file per acknowledged upload: no orphan').to.equal(acknowledged().length);
    expect(await readdir(path.join(dirs.imagesDir, '.incoming'))).to.deep.equal([]);
    await second.process.kill('SIGKILL');
  });

  it('refuses uploads with 507 below the free-space reserve, before the disk is full', async () => {
    resizeTmpfs(disk, '4m');
    const server = await spawnServer(dirs, ['--min-free-disk', '3MB']);
    const alice = await TestClient.login(server.url, 'alice', 'alice-pw');
    const workload = await alice.createWorkload();
    let refused: Sent | undefined;
    for (let seed = 2001; seed <= 2400 && !refused; seed++) {
      const one = await send(alice, workload.workload_id, seed);
      expect([201, 507]).to.include(one.status);
      if (one.status === 507) refused = one;
    }
    expect(refused?.message).to.match(/reserve/);
    // the reserve kept room: the datastore still takes writes
    const another = await alice.createWorkload();
    expect(another.workload_id).to.be.a('string');
    await server.process.kill('SIGKILL');
  });
});
