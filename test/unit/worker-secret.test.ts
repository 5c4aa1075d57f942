import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { readKeptSecret } from '../../bin/cluster-secret.js';
import { findWorkerSecret, isThisMachine } from '../../bin/worker-secret.js';
import { tempDir, type TempDir } from './helpers.js';

const INTERFACES: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  eth0: [
    {
      address: '10.1.2.3',
      netmask: '255.0.0.0',
      family: 'IPv4',
      mac: '00:00:00:00:00:01',
      internal: false,
      cidr: '10.1.2.3/8',
    },
    {
      address: 'fe80::1',
      netmask: 'ffff:ffff:ffff:ffff::',
      family: 'IPv6',
      mac: '00:00:00:00:00:01',
      internal: false,
      cidr: 'fe80::1/64',
      scopeid: 2,
    },
  ],
};

function caught(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  return expect.fail('expected it to throw');
}

describe("a worker finds the cluster secret on the server's machine", () => {
  describe('which controller hosts are this machine', () => {
    for (const host of ['localhost', 'LocalHost', 'api.localhost', '127.0.0.1', '127.8.9.10', '::1', '[::1]']) {
      it(`${host} is`, () => expect(isThisMachine(host, INTERFACES, 'box')).to.equal(true));
    }
    for (const host of ['::ffff:127.0.0.1', '10.1.2.3', 'fe80::1', 'box', 'BOX']) {
      it(`${host} is (loopback mapped to IPv6, an interface's address, the machine's name)`, () =>
        expect(isThisMachine(host, INTERFACES, 'box')).to.equal(true));
    }
    for (const host of ['10.1.2.4', '192.0.2.1', '128.0.0.1', 'server-host', 'box.example.org', '::2']) {
      it(`${host} is not`, () => expect(isThisMachine(host, INTERFACES, 'box')).to.equal(false));
    }
  });

  describe('the kept secret', () => {
    let dir: TempDir;
    let dataDir: string;
    let file: string;

    beforeEach(async () => {
      dir = await tempDir();
      dataDir = path.join(dir.path, 'data');
      file = path.join(dataDir, 'cluster-secret');
      await mkdir(dataDir, { mode: 0o700 });
      await writeFile(file, 'the-secret\n', { mode: 0o600 });
      await chmod(dataDir, 0o700);
    });

    afterEach(async () => {
      await dir.remove();
    });

    it('is read from a private file in a private folder', () => {
      expect(readKeptSecret(dataDir, { privateFolder: true })).to.equal('the-secret');
    });

    it('is none when the file or the folder does not exist', () => {
      expect(readKeptSecret(path.join(dir.path, 'elsewhere'), { privateFolder: true })).to.equal(null);
      expect(readKeptSecret(dir.path, { privateFolder: true })).to.equal(null);
    });

    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
      it(`is refused from a file of mode 0${mode.toString(8)}, with the chmod that makes it private`, async () => {
        await chmod(file, mode);
        const error = caught(() => readKeptSecret(dataDir, { privateFolder: true }));
        expect(error.message)
          .to.include(`mode 0${mode.toString(8)}`)
          .and.include(`chmod 600 ${file}`);
        // the server refuses it too
        expect(() => readKeptSecret(dataDir, { privateFolder: false })).to.throw(/chmod 600/);
      });
    }

    it('is refused by a worker from a folder others may enter, and not by the server', async () => {
      await chmod(dataDir, 0o755);
      expect(caught(() => readKeptSecret(dataDir, { privateFolder: true })).message).to.include(`chmod 700 ${dataDir}`);
      expect(readKeptSecret(dataDir, { privateFolder: false })).to.equal('the-secret');
    });

    it('is refused through a symbolic link', async () => {
      const other = path.join(dir.path, 'other');
      await mkdir(other, { mode: 0o700 });
      await symlink(file, path.join(other, 'cluster-secret'));
      expect(() => readKeptSecret(other, { privateFolder: true })).to.throw(/symbolic link/);
    });

    it('is found by a worker whose controller is local, with the file it came from', () => {
      const found = findWorkerSecret({ controllerHost: 'localhost', argv: [], dataDir });
      expect(found).to.deep.equal({ secret: 'the-secret', file });
    });
  });

  describe('without a secret, the error says what to run and where the secret is', () => {
    const argv = ['--controller', 'server-host:40899', '--worker-name', 'w1', '--tags', 'a,b'];

    it('for a controller on another machine, without looking at any file', () => {
      const error = caught(() =>
        findWorkerSecret({ controllerHost: 'server-host', argv, dataDir: '/nonexistent/data' }),
      );
      expect(error.message).to.include('not on this machine');
      expect(error.message).to.include(
        'npm run worker -- --controller server-host:40899 --worker-name w1 --tags a,b --secret <the secret>',
      );
      expect(error.message).to.include('DPIP_SECRET=<the secret> npm run worker -- --controller server-host:40899');
      expect(error.message).to.include('cat data/cluster-secret').and.include('cluster secret: ...');
    });

    it('for a local controller whose data dir holds no secret, naming the file it looked for', () => {
      const local = ['--controller', 'localhost:40899', '--worker-name', 'my worker'];
      const error = caught(() => findWorkerSecret({ controllerHost: 'localhost', argv: local, dataDir: '/none/data' }));
      expect(error.message).to.include('none in /none/data/cluster-secret').and.include('--data-dir');
      // an argument with a space is quoted as a shell needs it
      expect(error.message).to.include("--worker-name 'my worker' --secret <the secret>");
    });
  });
});
