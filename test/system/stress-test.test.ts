// stress_test.py against a real server process with two local workers: a passing run, a failing one,
// the workload deleted at the end with what that freed (as the server counts it), kept with -keep, a
// deletion that fails, and a workload cancelled by another client while the run waits for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { TestClient } from '../helpers/api.js';
import { makeTestImage, poisonPng } from '../helpers/images.js';
import { killAll } from '../helpers/processes.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { makeDirs, spawnServer, type TestDirs } from '../helpers/system.js';

const SCRIPT = fileURLToPath(new URL('../../../stress_test.py', import.meta.url));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the script to its end (killed after two minutes); `onStderr` sees its stderr so far as it comes. */
function stressTest(
  args: string[],
  onStderr: (text: string, child: ChildProcess) => void = () => undefined,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The workload the run reported. */
function workloadOf(stdout: string): string {
  const match = /^ {2}workload\s+([0-9a-f-]{36}) /m.exec(stdout);
  expect(match, stdout).to.not.equal(null);
  return match![1]!;
}

/** What the report says the deletion freed: images and bytes, and the bytes as written for people. */
function freedOf(stdout: string): { images: number; bytes: number; readable: string } {
  const match = /^ {2}cleanup\s+deleted the workload: freed (\d+) images?, ([\d.]+ [KMGT]?i?B) \((\d+) bytes\)$/m.exec(
    stdout,
  );
  expect(match, stdout).to.not.equal(null);
  return { images: Number(match![1]), readable: match![2]!, bytes: Number(match![3]) };
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** `count` frames 0.png ... in a new directory; `poisoned` frames decode to nothing. */
async function frames(root: string, name: string, count: number, poisoned: number[] = []): Promise<string> {
  const directory = path.join(root, name);
  await mkdir(directory);
  for (let index = 0; index < count; index++)
    await writeFile(
      path.join(directory, `${index}.png`),
      poisoned.includes(index) ? await poisonPng() : await makeTestImage(80, 60, 'image/png', index + 1),
    );
  return directory;
}

/**
 * A proxy in front of the server that answers every DELETE with a 500, as a server that fails to delete
 * would, and passes anything else through.
 */
async function refusingDeletes(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const proxy: HttpServer = createServer((req, res) => {
    if (req.method === 'DELETE') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 500, message: 'internal error' } }));
      return;
    }
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

describe('stress_test.py against a real server with two local workers', function () {
  this.timeout(180_000);
  let dirs: TestDirs;
  let url: string;
  let alice: TestClient;

  before(async () => {
    dirs = await makeDirs();
    ({ url } = await spawnServer(dirs, ['--workers', '2', '--engine', 'sharp']));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
  });

  after(async () => {
    await killAll();
    await dirs.remove();
  });

  /** The script's arguments for `action` as alice, against `api`. */
  const asAlice = (action: string, api: string, ...args: string[]): string[] => [
    '-action',
    action,
    '-api',
    api,
    '-user',
    'alice',
    '-password',
    'alice-pw',
    ...args,
  ];
  const run = (...args: string[]): string[] => asAlice('run', url, ...args);

  /** What the server counts as deleted by users, and the images it keeps. */
  async function tally(): Promise<{ deletedImages: number; freedBytes: number; keptImages: number }> {
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    return {
      deletedImages: metrics.sum('dpip_deleted_images_total', { reason: 'user' }),
      freedBytes: metrics.sum('dpip_freed_bytes_total', { reason: 'user' }),
      keptImages: metrics.sum('dpip_images'),
    };
  }

  it('runs the whole flow, passes, then deletes its workload and prints what the server freed', async () => {
    const before = await tally();
    const { code, stdout, stderr } = await stressTest(run('-count', '12', '-size', '96x64', '-concurrency', '4'));
    expect(code, stderr).to.equal(0);
    expect(stdout).to.match(/end to end\s+12 done, 0 failed/);
    expect(stdout).to.match(/verified\s+12\/12 correct/);
    expect(stdout).to.match(/result latency\s+min .*\(n=12\)/);
    expect(stdout).to.match(/result\s+PASS/);
    expect(stdout).not.to.include('may swap neighbours');

    // gone, with its twelve originals and twelve results, and the figures are the server's own
    expect((await alice.call('GET', `/workloads/${workloadOf(stdout)}`)).status).to.equal(404);
    const freed = freedOf(stdout);
    const after = await tally();
    expect(freed.images).to.equal(24);
    expect(freed.images).to.equal(after.deletedImages - before.deletedImages);
    expect(freed.bytes).to.equal(after.freedBytes - before.freedBytes);
    expect(after.keptImages).to.equal(before.keptImages);
    const [amount, unit] = freed.readable.split(' ');
    expect(Math.abs(Number(amount) * UNITS[unit!]! - freed.bytes)).to.be.at.most(0.05 * UNITS[unit!]!);
  });

  it('fails, exit 1, naming the frame that could not be filtered, and deletes its workload all the same', async () => {
    const directory = await frames(dirs.root, 'poisoned', 6, [5]);
    const { code, stdout } = await stressTest(run('-frames-path', directory, '-count', '6', '-concurrency', '3'));
    expect(code).to.equal(1);
    expect(stdout).to.match(/end to end\s+5 done, 1 failed/);
    expect(stdout).to.match(/verified\s+5\/6 correct/);
    expect(stdout).to.include('5.png');
    expect(stdout).to.match(/result\s+FAIL/);
    // six originals, five results
    expect(freedOf(stdout).images).to.equal(11);
    expect((await alice.call('GET', `/workloads/${workloadOf(stdout)}`)).status).to.equal(404);
  });

  it('leaves the workload and its images on the server with -keep', async () => {
    const before = await tally();
    const { code, stdout, stderr } = await stressTest(run('-count', '4', '-size', '64x48', '-keep'));
    expect(code, stderr).to.equal(0);
    expect(stdout).to.match(/cleanup\s+kept \(-keep\): the workload and its images stay on the server/);
    expect(stdout).to.match(/result\s+PASS/);
    const kept = await alice.workload(workloadOf(stdout));
    expect(kept.total_images).to.equal(4);
    expect(kept.done_jobs).to.equal(4);
    const after = await tally();
    expect(after.keptImages - before.keptImages).to.equal(8);
    expect(after.deletedImages).to.equal(before.deletedImages);
  });

  it('refuses -keep outside run', async () => {
    const { code, stderr } = await stressTest(['-action', 'pull', '-workload-id', 'x', '-token', 't', '-keep']);
    expect(code).to.equal(2);
    expect(stderr).to.include('-keep is for run');
  });

  it('fails when the workload cannot be deleted, saying so, with the verification standing', async () => {
    const proxy = await refusingDeletes(url);
    try {
      const { code, stdout } = await stressTest(asAlice('run', proxy.url, '-count', '3', '-size', '64x48'));
      expect(code).to.equal(1);
      expect(stdout).to.match(/verified\s+3\/3 correct/);
      expect(stdout).to.match(
        /cleanup\s+FAILED: the workload and its images may still be on the server: DELETE \/workloads\/\S+: HTTP 500/,
      );
      expect(stdout).to.match(/errors\s+1\n\s+1\s+cleanup: workload not deleted: e\.g\. DELETE/);
      expect(stdout).to.match(/result\s+FAIL/);
      // and it is still there
      expect((await alice.workload(workloadOf(stdout))).total_images).to.equal(3);
    } finally {
      await proxy.close();
    }
  });

  /** Waits until the run's workload has its first image, while the others are still being uploaded. */
  async function firstImageIn(id: string): Promise<void> {
    while ((await alice.workload(id)).total_images === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** The workload id, from what the script logs as soon as it has made it. */
  const announced = (stderr: string): string | undefined => /^workload ([0-9a-f-]{36}) /m.exec(stderr)?.[1];

  it('stops waiting as soon as another client cancels the workload, fails, and deletes it', async () => {
    let cancelled: Promise<number> | null = null;
    const started = Date.now();
    const { code, stdout, stderr } = await stressTest(
      run('-count', '300', '-size', '64x48', '-concurrency', '1', '-timeout', '100'),
      (text) => {
        const id = announced(text);
        if (id && !cancelled) cancelled = firstImageIn(id).then(async () => (await alice.cancelWorkload(id)).status);
      },
    );
    expect(cancelled, stderr).to.not.equal(null);
    expect(await cancelled!, 'cancelled while it ran').to.equal(200);
    expect(code).to.equal(1);
    // it stopped waiting once the workload was cancelled, long before its -timeout
    expect(Date.now() - started).to.be.below(60_000);
    expect(stdout, stdout).to.match(/end to end\s+not completed: \d+ done, 0 failed(, \d+ cancelled)?\n/);
    expect(stdout).to.match(
      /upload HTTP 409: e\.g\. \d+\.png: workload "[^"]+" was cancelled: it takes no more images/,
    );
    expect(stdout).to.match(/workload cancelled while it ran: e\.g\. cancelled at \S+: \d+ images? not filtered/);
    expect(stdout).to.match(/result\s+FAIL/);
    expect((await alice.call('GET', `/workloads/${workloadOf(stdout)}`)).status).to.equal(404);
  });

  it('deletes its workload when interrupted with Ctrl-C, and says so', async () => {
    let interrupted: Promise<void> | null = null;
    const { code, stderr } = await stressTest(
      run('-count', '300', '-size', '64x48', '-concurrency', '1'),
      (text, child) => {
        const id = announced(text);
        if (id && !interrupted) interrupted = firstImageIn(id).then(() => void child.kill('SIGINT'));
      },
    );
    expect(interrupted, stderr).to.not.equal(null);
    await interrupted;
    expect(code, stderr).to.equal(130);
    const id = announced(stderr)!;
    expect(stderr).to.include(`cleanup after the error: deleting workload ${id}`);
    expect(stderr).to.match(/cleanup: deleted the workload: freed [1-9]\d* images?, /);
    expect(stderr).to.include('interrupted');
    expect((await alice.call('GET', `/workloads/${id}`)).status).to.equal(404);
  });

  it('pull -wait does not wait for a cancelled workload: it pulls what was done', async () => {
    // tagged for no worker: its image stays queued until it is cancelled
    const made = await alice.createWorkload({
      workload_name: `pull-cancelled-${Date.now().toString(36)}`,
      tags: ['none'],
    });
    const upload = await alice.upload(
      made.workload_id,
      await makeTestImage(64, 48, 'image/png', 9),
      '0.png',
      'image/png',
    );
    expect(upload.status).to.equal(201);
    expect((await alice.cancelWorkload(made.workload_id)).status).to.equal(200);
    const started = Date.now();
    const { code, stdout, stderr } = await stressTest(
      asAlice(
        'pull',
        url,
        '-workload-id',
        made.workload_id,
        '-output-path',
        path.join(dirs.root, 'pulled'),
        '-wait',
        '-timeout',
        '60',
      ),
    );
    expect(code, stderr).to.equal(0);
    expect(Date.now() - started, 'not waiting for the timeout').to.be.below(30_000);
    expect(stderr).to.include('warning: workload is cancelled: pulling the 0 results finished so far');
    expect(stdout).to.include(`pulled 0/0 filtered images of workload ${made.workload_id}`);
  });
});
