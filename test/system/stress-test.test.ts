import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { makeTestImage, poisonPng } from '../helpers/images.js';
import { killAll } from '../helpers/processes.js';
import { makeDirs, spawnServer, type TestDirs } from '../helpers/system.js';

const SCRIPT = fileURLToPath(new URL('../../../stress_test.py', import.meta.url));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function stressTest(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile('python3', [SCRIPT, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error && typeof error.code === 'number' ? error.code : error ? -1 : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('stress_test.py against a real server with two local workers', function () {
  this.timeout(180_000);
  let dirs: TestDirs;
  let url: string;

  before(async () => {
    dirs = await makeDirs();
    ({ url } = await spawnServer(dirs, ['--workers', '2', '--engine', 'sharp']));
  });

  after(async () => {
    await killAll();
    await dirs.remove();
  });

  it('runs the whole flow, pairs every result with its original by id, and passes', async () => {
    const { code, stdout, stderr } = await stressTest([
      '-action',
      'run',
      '-api',
      url,
      '-user',
      'alice',
      '-password',
      'alice-pw',
      '-count',
      '12',
      '-size',
      '96x64',
      '-concurrency',
      '4',
    ]);
    expect(code, stderr).to.equal(0);
    expect(stdout).to.match(/end to end\s+12 done, 0 failed/);
    expect(stdout).to.match(/verified\s+12\/12 correct/);
    expect(stdout).to.match(/result latency\s+min .*\(n=12\)/);
    expect(stdout).to.match(/result\s+PASS/);
    expect(stdout).not.to.include('may swap neighbours');
  });

  it('fails, exit 1, naming the frame that could not be filtered', async () => {
    const frames = path.join(dirs.root, 'frames');
    await mkdir(frames);
    for (let index = 0; index < 5; index++)
      await writeFile(path.join(frames, `${index}.png`), await makeTestImage(80, 60, 'image/png', index + 1));
    await writeFile(path.join(frames, '5.png'), await poisonPng());
    const { code, stdout } = await stressTest([
      '-action',
      'run',
      '-api',
      url,
      '-user',
      'alice',
      '-password',
      'alice-pw',
      '-frames-path',
      frames,
      '-count',
      '6',
      '-concurrency',
      '3',
    ]);
    expect(code).to.equal(1);
    expect(stdout).to.match(/end to end\s+5 done, 1 failed/);
    expect(stdout).to.match(/verified\s+5\/6 correct/);
    expect(stdout).to.include('5.png');
    expect(stdout).to.match(/result\s+FAIL/);
  });
});
