// stress_test.py against a real server process with two local workers: a passing run, a failing one,
// the workload deleted at the end with what that freed (as the server counts it), kept with -keep, a
// deletion that fails, and a workload cancelled by another client while the run waits for it; a chain
// of operations given with -operations (its usage errors, the JSON the server gets, a workload that
// waits, results checked against the chain the view lists); and, inside the script, the sizes a chain
// makes (against the server's geometry and sharp's) and the WebP and AVIF headers of files sharp wrote.
// Against a server that keeps its images in object storage (a real S3-protocol server): uploads through
// upload slots (the PUT straight to the store) or, with -upload-via api, through POST /images; a PUT the
// store refuses, named without its presigned URL. And a request cut short by Ctrl-C: the cleanup after it
// does not reuse its half-used connection.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import sharp, { type Sharp } from 'sharp';
import type { Server } from '../../bin/server.js';
import {
  chainGeometry,
  FITS,
  parseChain,
  resizedSize,
  type Fit,
  type Operation,
} from '../../common/operations/index.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage, poisonPng } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { setEnv, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { makeDirs, spawnServer, startTestServer, type TestDirs } from '../helpers/system.js';

const SCRIPT = fileURLToPath(new URL('../../../stress_test.py', import.meta.url));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Python never writes its bytecode next to the script (the checkout stays as it was). */
const PYTHON_ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };

/** Runs the script to its end (killed after two minutes); `onStderr` sees its stderr so far as it comes. */
function stressTest(
  args: string[],
  onStderr: (text: string, child: ChildProcess) => void = () => undefined,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: PYTHON_ENV });
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
 * Calls the script's own functions in a Python process: `code` reads `data` (the JSON given) and sets
 * `result`, which comes back as JSON.
 */
function inPython<T>(code: string, data: unknown): Promise<T> {
  const program = [
    'import json, sys',
    'from pathlib import Path',
    `sys.path.insert(0, ${JSON.stringify(path.dirname(SCRIPT))})`,
    'import stress_test as st',
    'data = json.load(sys.stdin)',
    code,
    'print(json.dumps(result))',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'pipe'], env: PYTHON_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(stdout) as T) : reject(new Error(`python exited ${code}: ${stderr}`)),
    );
    child.stdin.end(JSON.stringify(data));
  });
}

interface ProxyOptions {
  /** Answers every DELETE with a 500, as a server that fails to delete would. */
  refuseDeletes?: boolean;
  /** Rewrites the JSON answer of GET /workloads/{id}. */
  rewriteWorkload?: (view: Record<string, unknown>) => Record<string, unknown>;
  /** Rewrites each slot of the JSON answer of POST /uploads (one slot, or `slots` for many). */
  rewriteSlot?: (slot: Record<string, unknown>) => Record<string, unknown>;
}

/** Forwards the answer of the server, rewritten when `rewrite` is given (a JSON body, of a 200 or a 201). */
function relay(answer: IncomingMessage, res: ServerResponse, rewrite?: (body: string) => string): void {
  const status = answer.statusCode ?? 502;
  if (!rewrite || (status !== 200 && status !== 201)) {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
    return;
  }
  const chunks: Buffer[] = [];
  answer.on('data', (chunk: Buffer) => chunks.push(chunk));
  answer.on('end', () => {
    const body = Buffer.from(rewrite(Buffer.concat(chunks).toString()));
    res.writeHead(status, { ...answer.headers, 'content-length': String(body.length) });
    res.end(body);
  });
}

/** A proxy in front of the server that passes everything through but for what `options` change. */
async function proxyTo(target: string, options: ProxyOptions): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const proxy: HttpServer = createServer((req, res) => {
    if (options.refuseDeletes && req.method === 'DELETE') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 500, message: 'internal error' } }));
      return;
    }
    const isWorkload = req.method === 'GET' && /^\/workloads\/[0-9a-f-]{36}$/.test(req.url ?? '');
    const isSlot = req.method === 'POST' && req.url === '/uploads';
    const rewriteSlot = options.rewriteSlot;
    const rewriteSlots = rewriteSlot
      ? (answer: Record<string, unknown>) =>
          Array.isArray(answer.slots)
            ? { ...answer, slots: (answer.slots as Record<string, unknown>[]).map(rewriteSlot) }
            : rewriteSlot(answer)
      : undefined;
    const rewriteJson = isWorkload ? options.rewriteWorkload : isSlot ? rewriteSlots : undefined;
    const rewrite = rewriteJson
      ? (body: string) => JSON.stringify(rewriteJson(JSON.parse(body) as Record<string, unknown>))
      : undefined;
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => relay(answer, res, rewrite),
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

/** The script's arguments for `action` as alice, against `api`. */
function asAlice(action: string, api: string, ...args: string[]): string[] {
  return ['-action', action, '-api', api, '-user', 'alice', '-password', 'alice-pw', ...args];
}

describe('stress_test.py -operations against a server no worker serves', function () {
  this.timeout(60_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  let alice: TestClient;

  before(async () => {
    dirs = await makeDirs();
    ({ server, url } = await startTestServer(dirs));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
  });

  after(async () => {
    await server?.close();
    await dirs?.remove();
  });

  it('sends the chain as typed JSON, and says why its images wait', async () => {
    const spec = 'resize:width=48:enlarge=true , grayscale,format:type=webp:quality=70';
    const { code, stdout, stderr } = await stressTest(
      asAlice('run', url, '-operations', spec, '-count', '3', '-size', '96x64', '-timeout', '2', '-keep'),
    );
    expect(code, stderr).to.equal(1);
    const chain = 'resize:width=48:fit=cover:enlarge=true,grayscale,format:type=webp:quality=70';
    expect(stdout).to.match(new RegExp(`^ {2}workload\\s+[0-9a-f-]{36} \\([^,]+, operations ${chain}\\)$`, 'm'));
    expect(stdout).to.match(/^ {2}expected results\s+3 x webp 48x32$/m);
    expect(stdout).to.include(
      'not finished before the timeout: e.g. 3 images still queued or running 2 s after the uploads ' +
        '(the server says: no live worker is connected)',
    );
    expect(stderr).to.include('waiting: no live worker is connected');
    const view = (await alice.workload(workloadOf(stdout))) as unknown as { filter: unknown; operations: unknown };
    expect(view.filter).to.equal(null);
    expect(view.operations).to.deep.equal([
      { op: 'resize', width: 48, height: null, fit: 'cover', enlarge: true },
      { op: 'grayscale' },
      { op: 'format', type: 'webp', quality: 70 },
    ]);
  });

  it('push makes a workload of the chain when it is given no -workload-id', async () => {
    const directory = await frames(dirs.root, 'push-chain', 2);
    const { code, stdout, stderr } = await stressTest(
      asAlice('push', url, '-operations', 'rotate:angle=270,flop', '-frames-path', directory),
    );
    expect(code, stderr).to.equal(0);
    const made = /^created workload ([0-9a-f-]{36}) \([^,]+, operations rotate:angle=270,flop\)$/m.exec(stderr);
    expect(made, stderr).to.not.equal(null);
    expect(stdout).to.include(`pushed 2/2 frames from ${directory} to workload ${made![1]}`);
    const view = (await alice.workload(made![1]!)) as unknown as { operations: unknown; total_images: number };
    expect(view.operations).to.deep.equal([{ op: 'rotate', angle: 270 }, { op: 'flop' }]);
    expect(view.total_images).to.equal(2);
  });
});

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
    // a local images folder: no upload slots
    expect(stdout).to.match(/^ {2}uploads via\s+POST \/images \(auto: the server offers no upload slots\)$/m);
    // checked against what its chain (the filter's one step) makes of each frame
    expect(stdout).to.match(/^ {2}expected results\s+12 x png 96x64$/m);
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

  /** The ids of alice's workloads. */
  async function workloadIds(): Promise<string[]> {
    const page = (await alice.call('GET', '/workloads?limit=500')).body.workloads as { workload_id: string }[];
    return page.map((workload) => workload.workload_id);
  }

  it('refuses a malformed -operations, or one the server does not have or refuses, as a usage error', async () => {
    const before = await workloadIds();
    const cases: [string[], string][] = [
      // the syntax, before anything is asked of the server
      [
        ['-operations', 'resize:width'],
        'argument -operations/--operations: step 1 (resize): "width" is not name=value',
      ],
      [['-operations', 'grayscale,,flip'], 'step 2 has no operation name'],
      [['-operations', 'resize:width=2:width=3'], 'step 1 (resize): "width" is given twice'],
      [['-operations', ''], 'empty chain: write steps separated by "," and parameters after ":" as name=value'],
      // names, types and ranges, from GET /operations
      [['-operations', 'grayscale,sepia'], 'step 2: unknown operation "sepia": the server has grayscale, blur,'],
      [['-operations', 'resize:widht=3'], 'step 1 (resize): unknown parameter "widht": it takes "width", "height"'],
      [['-operations', 'flip:angle=90'], 'step 1 (flip): unknown parameter "angle": it takes none'],
      [['-operations', 'resize:width=1.5'], '"width" must be a whole number from 1 to 16384, not "1.5"'],
      [['-operations', 'blur:sigma=0.1'], '"sigma" must be a number from 0.3 to 100, not 0.1'],
      [['-operations', 'format:type=webp:quality=101'], '"quality" must be a whole number from 1 to 100, not 101'],
      [['-operations', 'resize:width=9:enlarge=maybe'], '"enlarge" must be true or false, not "maybe"'],
      [['-operations', 'format:type=gif'], '"type" must be one of png, jpeg, webp, avif, not "gif"'],
      [['-operations', 'rotate:angle=45'], '"angle" must be one of 90, 180, 270, not "45"'],
      [['-operations', 'rotate'], 'step 1 (rotate): "angle" is required'],
      [['-operations', 'format:type=png,flip'], 'step 1 (format): "format" may only be the last step'],
      // what only the server checks: its 422, word for word
      [
        ['-operations', 'resize:fit=fill'],
        'the server refused the chain: step 1 (resize): give "width", "height" or both',
      ],
      // and with the other options
      [['-operations', 'grayscale', '-filter', 'blur'], 'give -filter or -operations, not both'],
    ];
    // with a token: so many logins in a row would be slowed down by the server's rate limit
    const withToken = ['-action', 'run', '-api', url, '-token', alice.token, '-count', '2', '-size', '32x24'];
    for (const [args, message] of cases) {
      const { code, stderr } = await stressTest([...withToken, ...args]);
      expect(code, `${args.join(' ')}: ${stderr}`).to.equal(2);
      expect(stderr, args.join(' ')).to.include(message);
    }
    const pull = await stressTest(['-action', 'pull', '-token', 't', '-workload-id', 'x', '-operations', 'flip']);
    expect(pull.code).to.equal(2);
    expect(pull.stderr).to.include('-operations is for the workload run or push creates');
    // nothing was made
    expect(await workloadIds()).to.deep.equal(before);
  });

  it('fails -upload-via slots before making anything when the server offers no slots (a local folder)', async () => {
    const before = await workloadIds();
    for (const action of ['run', 'push']) {
      const directory = action === 'push' ? ['-frames-path', await frames(dirs.root, 'slots-refused', 1)] : [];
      const { code, stderr } = await stressTest([
        ...['-action', action, '-api', url, '-token', alice.token, '-upload-via', 'slots', ...directory],
      ]);
      expect(code, stderr).to.equal(1);
      expect(stderr).to.include(
        '-upload-via slots: the server offers no upload slots (its image store: local): they need object storage',
      );
    }
    expect(await workloadIds()).to.deep.equal(before);
    const pull = await stressTest(['-action', 'pull', '-workload-id', 'x', '-token', 't', '-upload-via', 'api']);
    expect(pull.code).to.equal(2);
    expect(pull.stderr).to.include('-upload-via is for run and push');
  });

  it('refuses -keep outside run', async () => {
    const { code, stderr } = await stressTest(['-action', 'pull', '-workload-id', 'x', '-token', 't', '-keep']);
    expect(code).to.equal(2);
    expect(stderr).to.include('-keep is for run');
  });

  it('fails a run whose results are not what the chain the workload lists makes: format and size', async () => {
    // the view says the images go through a resize and a WebP encoding; the workers run the filter
    const chain = [
      { op: 'resize', width: 48, height: null, fit: 'cover', enlarge: false },
      { op: 'format', type: 'webp', quality: 80 },
    ];
    const proxy = await proxyTo(url, { rewriteWorkload: (view) => ({ ...view, filter: null, operations: chain }) });
    try {
      const { code, stdout, stderr } = await stressTest(
        asAlice('run', proxy.url, '-count', '3', '-size', '96x64', '-concurrency', '1'),
      );
      expect(code, stderr).to.equal(1);
      expect(stdout).to.match(/end to end\s+3 done, 0 failed/);
      expect(stdout).to.match(/verified\s+0\/3 correct/);
      expect(stdout).to.match(/^ {2}expected results\s+3 x webp 48x32$/m);
      expect(stdout).to.include(
        'verify: format or size not what the chain makes: e.g. original png 96x64, expected webp 48x32, ' +
          'result png 96x64',
      );
      expect(stdout).to.match(/result\s+FAIL/);
    } finally {
      await proxy.close();
    }
  });

  it('fails when the workload cannot be deleted, saying so, with the verification standing', async () => {
    const proxy = await proxyTo(url, { refuseDeletes: true });
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

  /**
   * Cancels the workload the script is still feeding. Between two uploads every image it has sent may be filtered
   * already; the workload is then completed and refuses (409) until the next upload arrives, so ask again.
   */
  async function cancelWhileRunning(id: string): Promise<number> {
    const until = Date.now() + 10_000;
    for (;;) {
      const answer = await alice.cancelWorkload(id);
      const completedForNow = answer.status === 409 && /already completed/.test(JSON.stringify(answer.body));
      if (!completedForNow || Date.now() > until) return answer.status;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
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
        if (id && !cancelled) cancelled = firstImageIn(id).then(() => cancelWhileRunning(id));
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

describe('stress_test.py against a server that keeps its images in object storage', function () {
  this.timeout(180_000);
  const PREFIX = 'dpip/stress';
  /** The server's largest upload: a frame over it is refused (413), alone or in a group's slots. */
  const MAX_UPLOAD_BYTES = 200_000;
  let dirs: TestDirs;
  let s3: TestS3Server;
  let url: string;
  let alice: TestClient;
  let restoreEnv: () => void = () => undefined;

  before(async () => {
    dirs = await makeDirs();
    s3 = await startS3Server();
    // the server and its local workers find the store's credentials in their environment
    restoreEnv = setEnv(s3.env);
    ({ url } = await spawnServer(dirs, [
      ...['--workers', '2', '--engine', 'sharp', '--image-store', 's3', '--s3-bucket', s3.bucket],
      ...['--s3-endpoint', s3.endpoint, '--s3-prefix', PREFIX, '--s3-force-path-style'],
      ...['--max-upload-bytes', String(MAX_UPLOAD_BYTES)],
    ]));
    alice = await TestClient.login(url, 'alice', 'alice-pw');
  });

  after(async () => {
    await killAll();
    await s3?.close();
    await dirs?.remove();
    restoreEnv();
  });

  /**
   * Requests the server answered so far, by route: slots opened (one or many a request), slots confirmed one
   * a request and many a request, and POST /images (the uploads through the API, and the workers' reports of
   * the results they stored).
   */
  async function uploadRequests(): Promise<{ slots: number; confirms: number; batchConfirms: number; images: number }> {
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    const count = (route: string) => metrics.sum('dpip_http_requests_total', { method: 'POST', route });
    return {
      slots: count('/uploads'),
      confirms: count('/uploads/:id/confirm'),
      batchConfirms: count('/uploads/confirm'),
      images: count('/images'),
    };
  }

  /** The workload's name, as the report gives it. */
  function workloadNameOf(stdout: string): string {
    const match = /^ {2}workload\s+[0-9a-f-]{36} \(([^,]+), /m.exec(stdout);
    expect(match, stdout).to.not.equal(null);
    return match![1]!;
  }

  /** Waits until no object of the workload is left in the bucket. */
  async function objectsGone(name: string): Promise<void> {
    await waitFor(`the objects of ${name} to go`, async () => {
      const keys = await s3.objectKeys();
      return !keys.some((key) => key.startsWith(`${PREFIX}/${name}/`));
    });
  }

  it('uploads through slots (auto), passes, deletes its workload and leaves nothing in the bucket', async () => {
    const before = await uploadRequests();
    const keysBefore = await s3.objectKeys();
    const { code, stdout, stderr } = await stressTest(
      asAlice('run', url, '-count', '12', '-size', '96x64', '-concurrency', '4'),
    );
    expect(code, stderr).to.equal(0);
    expect(stdout).to.match(/^ {2}uploads via\s+upload slots: POST \/uploads, PUT to the object store, confirm /m);
    expect(stdout).to.match(/, confirm \(auto: the server offers them\)$/m);
    expect(stdout).to.match(/^ {2}upload\s+12\/12 /m);
    expect(stdout).to.match(/end to end\s+12 done, 0 failed/);
    expect(stdout).to.match(/verified\s+12\/12 correct/);
    expect(stdout).to.match(/result\s+PASS/);
    // every original went around the server, none through it: 12 frames on 4 lanes, 3 a request
    const after = await uploadRequests();
    expect(after.slots - before.slots, 'slots opened 3 a request').to.equal(4);
    expect(after.batchConfirms - before.batchConfirms, 'confirmed 3 a request').to.equal(4);
    expect(after.confirms - before.confirms, 'none confirmed alone').to.equal(0);
    expect(after.images - before.images, "the workers' 12 results only").to.equal(12);
    // deleted: its originals and results, and their objects
    expect(freedOf(stdout).images).to.equal(24);
    expect((await alice.call('GET', `/workloads/${workloadOf(stdout)}`)).status).to.equal(404);
    await objectsGone(workloadNameOf(stdout));
    expect(await s3.objectKeys()).to.deep.equal(keysBefore);
  });

  it('uploads through POST /images with -upload-via api, and passes', async () => {
    const before = await uploadRequests();
    const { code, stdout, stderr } = await stressTest(
      asAlice('run', url, '-count', '6', '-size', '64x48', '-upload-via', 'api'),
    );
    expect(code, stderr).to.equal(0);
    expect(stdout).to.match(/^ {2}uploads via\s+POST \/images \(-upload-via api\)$/m);
    expect(stdout).to.match(/verified\s+6\/6 correct/);
    expect(stdout).to.match(/result\s+PASS/);
    const after = await uploadRequests();
    expect(after.images - before.images, 'six originals and six results').to.equal(12);
    expect(after.slots - before.slots).to.equal(0);
    await objectsGone(workloadNameOf(stdout));
  });

  it('push goes through slots too, in frame order, and says so', async () => {
    const directory = await frames(dirs.root, 'push-slots', 3);
    const { code, stdout, stderr } = await stressTest(
      asAlice('push', url, '-frames-path', directory, '-upload-via', 'slots', '-verbose'),
    );
    expect(code, stderr).to.equal(0);
    expect(stderr).to.include(
      'uploads via upload slots: POST /uploads, PUT to the object store, confirm (-upload-via slots)',
    );
    const made = /^created workload ([0-9a-f-]{36}) /m.exec(stderr);
    expect(made, stderr).to.not.equal(null);
    expect(stdout).to.include(`pushed 3/3 frames from ${directory} to workload ${made![1]}`);
    const ids = [...stdout.matchAll(/^\S+\/(\d)\.png: ([0-9a-f-]{36})$/gm)].map((match) => [match[1], match[2]]);
    expect(ids.map(([frame]) => frame)).to.deep.equal(['0', '1', '2']);
    const done = await alice.waitForCompletion(made![1]!, 60_000);
    expect(done.total_images).to.equal(3);
    expect(done.failed_jobs).to.equal(0);
    // the originals in upload order are the frames in order
    const listed = (await alice.call('GET', `/images?workload_id=${made![1]}`)).body.images as {
      image_id: string;
      type: string;
    }[];
    const originals = listed.filter((image) => image.type === 'original').map((image) => image.image_id);
    expect(originals).to.have.members(ids.map(([, id]) => id));
    expect((await alice.deleteWorkload(made![1]!)).status).to.equal(200);
  });

  it('a group of slots refused whole (one frame too large) goes one frame a request: the others go up', async () => {
    const directory = await frames(dirs.root, 'push-one-too-large', 3);
    // random bytes do not compress: a PNG of them is larger than the server takes
    await writeFile(path.join(directory, '1.png'), await makeTestImage(400, 300, 'image/png', 99));
    expect((await stat(path.join(directory, '1.png'))).size).to.be.above(MAX_UPLOAD_BYTES);
    const before = await uploadRequests();
    const { code, stdout, stderr } = await stressTest(
      asAlice('push', url, '-frames-path', directory, '-upload-via', 'slots', '-concurrency', '1'),
    );
    expect(code, stderr).to.equal(1);
    const made = /^created workload ([0-9a-f-]{36}) /m.exec(stderr);
    expect(made, stderr).to.not.equal(null);
    expect(stdout).to.include(`pushed 2/3 frames from ${directory} to workload ${made![1]}`);
    expect(stdout).to.match(/upload HTTP 413: e\.g\. 1\.png: the file is larger than the limit of 200000 bytes/);
    const after = await uploadRequests();
    // the group's slots refused, then one slot a frame: 1 + 3, and two confirms alone
    expect(after.slots - before.slots).to.equal(4);
    expect(after.confirms - before.confirms).to.equal(2);
    expect(after.batchConfirms - before.batchConfirms).to.equal(0);
    const done = await alice.waitForCompletion(made![1]!, 60_000);
    expect(done.total_images).to.equal(2);
    expect((await alice.deleteWorkload(made![1]!)).status).to.equal(200);
  });

  it('names the frame, the image and the status of a PUT the store refuses, never the presigned URL', async () => {
    // a store that refuses every PUT as S3 does, and records what it was sent
    const seen: { url: string; headers: Record<string, string | string[] | undefined> }[] = [];
    const store = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>' +
            `<Message>Access Denied</Message><Resource>${req.url}</Resource></Error>`,
        );
      });
    });
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve));
    const storeOrigin = `http://127.0.0.1:${(store.address() as AddressInfo).port}`;
    const slots: { url: string; headers: Record<string, string> }[] = [];
    const proxy = await proxyTo(url, {
      rewriteSlot: (slot) => {
        const upload = slot.upload as { method: string; url: string; headers: Record<string, string> };
        slots.push(upload);
        return {
          ...slot,
          upload: { ...upload, url: storeOrigin + new URL(upload.url).pathname + new URL(upload.url).search },
        };
      },
    });
    try {
      const { code, stdout, stderr } = await stressTest(
        asAlice('run', proxy.url, '-count', '3', '-size', '64x48', '-concurrency', '1'),
      );
      expect(code).to.equal(1);
      expect(stdout).to.match(/^ {2}upload\s+0\/3 /m);
      expect(stdout).to.match(
        /upload PUT HTTP 403: e\.g\. 0\.png: image [0-9a-f-]{36}: the object store answered AccessDenied/,
      );
      expect(stdout).to.match(/result\s+FAIL/);
      expect(slots).to.have.length(3);
      expect(seen).to.have.length(3);
      for (const [index, request] of seen.entries()) {
        // exactly the slot's headers, with what HTTP needs; no token
        expect(request.headers['content-type']).to.equal(slots[index]!.headers['content-type']);
        expect(Object.keys(request.headers).sort()).to.deep.equal(['content-length', 'content-type', 'host']);
        const signature = new URL(request.url, storeOrigin).searchParams.get('X-Amz-Signature');
        expect(signature).to.match(/^[0-9a-f]{64}$/);
        for (const text of [stdout, stderr]) {
          expect(text).not.to.include(signature!);
          expect(text).not.to.include(new URL(slots[index]!.url).pathname);
        }
      }
      expect(`${stdout}${stderr}`).not.to.match(/X-Amz-|127\.0\.0\.1:\d+\/dpip/);
      // nothing was confirmed: the workload was empty, and it is gone
      expect(freedOf(stdout).images).to.equal(0);
    } finally {
      await proxy.close();
      store.closeAllConnections();
      await new Promise<void>((resolve) => store.close(() => resolve()));
    }
  });
});

/** A deterministic generator of whole numbers from 1 to `limit`. */
function numbers(seed: number): (limit: number) => number {
  let state = seed;
  return (limit) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return 1 + (state % limit);
  };
}

function chainOf(steps: unknown[]): Operation[] {
  const parsed = parseChain(steps);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.chain;
}

interface Info {
  format: string;
  width: number;
  height: number;
}

describe('stress_test.py inside: the sizes a chain makes, and the headers of its results', function () {
  this.timeout(60_000);

  it('sizes every resize as the server does (its resizedSize), for every fit, with and without enlarging', async () => {
    type Case = { size: [number, number]; width: number | null; height: number | null; fit: Fit; enlarge: boolean };
    const cases: Case[] = [];
    // every small case, where the rounding ties are
    const sides = [null, 1, 2, 3, 4, 5, 6, 7, 8];
    for (const inWidth of sides.slice(1))
      for (const inHeight of sides.slice(1))
        for (const width of sides)
          for (const height of sides)
            for (const fit of FITS)
              for (const enlarge of [false, true])
                if (width !== null || height !== null)
                  cases.push({ size: [inWidth!, inHeight!], width, height, fit, enlarge });
    // and large ones
    const next = numbers(11);
    for (let round = 0; round < 3000; round++)
      cases.push({
        size: [next(4000), next(4000)],
        width: round % 5 === 1 ? null : next(4000),
        height: round % 5 === 2 ? null : next(4000),
        fit: FITS[next(FITS.length) - 1]!,
        enlarge: next(2) === 1,
      });
    const sizes = await inPython<[number, number][]>(
      'result = [st.resized_size(tuple(c["size"]), c["width"], c["height"], c["fit"], c["enlarge"]) for c in data]',
      cases,
    );
    const differing = cases.filter((c, index) => {
      const server = resizedSize({ width: c.size[0], height: c.size[1] }, c.width, c.height, c.fit, c.enlarge);
      return server.width !== sizes[index]![0] || server.height !== sizes[index]![1];
    });
    expect(differing).to.deep.equal([]);
    expect(sizes).to.have.length(8 * 8 * 80 * 5 * 2 + 3000);
  });

  it('sizes a resize and a thumbnail as sharp makes them', async () => {
    const next = numbers(5);
    const cases: { size: [number, number]; step: Operation }[] = [];
    for (let round = 0; round < 40; round++) {
      const enlarge = next(2) === 1;
      const fit = FITS[next(FITS.length) - 1];
      const step =
        round % 4 === 3
          ? { op: 'thumbnail', size: next(300) }
          : { op: 'resize', width: next(300), height: round % 4 === 1 ? null : next(300), fit, enlarge };
      cases.push({ size: [next(300), next(300)], step: chainOf([step])[0]! });
    }
    const predicted = await inPython<[number, number][]>(
      'result = [st.chain_geometry([c["step"]], tuple(c["size"])) for c in data]',
      cases,
    );
    for (const [index, { size, step }] of cases.entries()) {
      const image = sharp({ create: { width: size[0], height: size[1], channels: 3, background: '#c81414' } });
      const resize =
        step.op === 'thumbnail'
          ? { width: step.size, height: step.size, fit: 'inside' as const, withoutEnlargement: true }
          : step.op === 'resize'
            ? {
                width: step.width ?? undefined,
                height: step.height ?? undefined,
                fit: step.fit,
                withoutEnlargement: !step.enlarge,
              }
            : {};
      const { info } = await image.resize(resize).png().toBuffer({ resolveWithObject: true });
      expect(predicted[index], `${size.join('x')} ${JSON.stringify(step)}`).to.deep.equal([info.width, info.height]);
    }
  });

  it('sizes whole chains as the server does, and names the crop that falls outside as it does', async () => {
    const next = numbers(3);
    const cases: { size: [number, number]; chain: Operation[] }[] = [];
    for (let round = 0; round < 600; round++) {
      const steps: Record<string, unknown>[] = [];
      for (let index = 0, count = next(4); index < count; index++) {
        const kind = next(6);
        if (kind === 1) steps.push({ op: 'resize', width: next(500), fit: FITS[next(5) - 1], enlarge: next(2) === 1 });
        if (kind === 2) steps.push({ op: 'thumbnail', size: next(300) });
        if (kind === 3)
          steps.push({ op: 'crop', left: next(100) - 1, top: next(100) - 1, width: next(200), height: next(200) });
        if (kind === 4) steps.push({ op: 'rotate', angle: [90, 180, 270][next(3) - 1] });
        if (kind === 5) steps.push({ op: next(2) === 1 ? 'flip' : 'grayscale' });
        if (kind === 6) steps.push({ op: 'resize', height: next(500), width: next(3) === 1 ? next(500) : null });
      }
      steps.push({ op: 'format', type: 'avif' });
      cases.push({ size: [next(600), next(600)], chain: chainOf(steps) });
    }
    const predicted = await inPython<([number, number] | string)[]>(
      'result = [st.chain_geometry(c["chain"], tuple(c["size"])) for c in data]',
      cases,
    );
    let refused = 0;
    for (const [index, { size, chain }] of cases.entries()) {
      const server = chainGeometry(chain, { width: size[0], height: size[1] });
      const label = `${size.join('x')} ${JSON.stringify(chain)}`;
      if (server.ok) expect(predicted[index], label).to.deep.equal([server.output.width, server.output.height]);
      else {
        expect(predicted[index], label).to.equal(server.error);
        refused += 1;
      }
    }
    // both kinds of answers were compared
    expect(refused).to.be.within(50, 550);
  });

  it('reads the format and size of WebP (VP8, VP8L, VP8X) and AVIF files sharp wrote; finds them broken', async () => {
    const base = (width: number, height: number, channels: 3 | 4) =>
      sharp({ create: { width, height, channels, background: { r: 200, g: 20, b: 20, alpha: 0.5 } } });
    const made: { name: string; format: string; width: number; height: number; data: Buffer }[] = [];
    const add = async (name: string, format: string, width: number, height: number, image: Sharp) =>
      made.push({ name, format, width, height, data: await image.toBuffer() });
    await add('lossy', 'webp', 123, 45, base(123, 45, 3).webp({ quality: 70 }));
    await add('lossless', 'webp', 301, 7, base(301, 7, 3).webp({ lossless: true }));
    await add('lossy with alpha', 'webp', 64, 300, base(64, 300, 4).webp({ quality: 50 }));
    await add('wide lossless', 'webp', 9000, 3, base(9000, 3, 4).webp({ lossless: true }));
    await add('avif', 'avif', 123, 45, base(123, 45, 3).avif({ quality: 50 }));
    await add('avif with alpha', 'avif', 77, 301, base(77, 301, 4).avif({ quality: 50 }));
    await add('png', 'png', 33, 17, base(33, 17, 3).png());
    await add('jpeg', 'jpeg', 17, 33, base(17, 33, 3).jpeg());
    // each kind of WebP chunk is among them
    const chunks = made.filter((file) => file.format === 'webp').map((file) => file.data.subarray(12, 16).toString());
    expect(chunks).to.include.members(['VP8 ', 'VP8L', 'VP8X']);

    const checked = await inPython<
      { info: Info | null; problems: string[]; truncated: string[]; mislabelled: string[] }[]
    >(
      [
        'import base64',
        'def check(blob, fmt):',
        '    info, problems = st.check_filtered(blob, st.MIME_OF_FORMAT[fmt], False)',
        '    return info, [p.kind + ": " + p.message for p in problems]',
        'result = []',
        'for f in data:',
        '    blob = base64.b64decode(f["data"])',
        '    info, problems = check(blob, f["format"])',
        '    result.append({"info": info and {"format": info.format, "width": info.width, "height": info.height},',
        '                   "problems": problems, "truncated": check(blob[:-40], f["format"])[1],',
        '                   "mislabelled": [p.kind for p in st.check_filtered(',
        '                       blob, "image/jpeg" if f["format"] == "png" else "image/png", False)[1]]})',
      ].join('\n'),
      made.map((file) => ({ format: file.format, data: file.data.toString('base64') })),
    );
    for (const [index, file] of made.entries()) {
      const { info, problems, truncated, mislabelled } = checked[index]!;
      expect(info, file.name).to.deep.equal({ format: file.format, width: file.width, height: file.height });
      expect(problems, file.name).to.deep.equal([]);
      expect(truncated, file.name).to.have.length.above(0);
      expect(mislabelled, file.name).to.deep.equal(['verify: Content-Type does not match the data']);
    }
    const riff = /^verify: truncated WebP: RIFF length (\d+), (\d+) bytes came$/.exec(checked[0]!.truncated[0] ?? '');
    expect(riff, checked[0]!.truncated.join()).to.not.equal(null);
    expect(Number(riff![1]) - Number(riff![2])).to.equal(40);
    expect(checked[4]!.truncated[0]).to.match(/^verify: corrupt AVIF: box b'mdat' at byte \d+ runs past the end/);
  });

  it('checks what a chain made: format and size against the original, and R = G = B for a grey PNG', async () => {
    const original = await makeTestImage(96, 64, 'image/png', 3);
    const chain = chainOf([{ op: 'resize', width: 40 }, { op: 'grayscale' }, { op: 'format', type: 'webp' }]);
    const made = await sharp(original).resize({ width: 40 }).grayscale().webp({ quality: 80 }).toBuffer();
    const unresized = await sharp(original).grayscale().webp({ quality: 80 }).toBuffer();
    const greyRgb = await sharp(original).removeAlpha().grayscale().toColourspace('srgb').png().toBuffer();
    expect((await sharp(greyRgb).metadata()).channels).to.equal(3);
    const result = await inPython<{ expected: string; made: string; shapes: string[][]; grey: boolean[] }>(
      [
        'import base64',
        'blob = {name: base64.b64decode(text) for name, text in data["files"].items()}',
        'original = st.read_image_info(blob["original"])',
        'def download(name):',
        '    result = st.FilteredDownload(0, name)',
        '    result.info = st.read_image_info(blob[name])',
        '    return result',
        'upload = st.FrameUpload(0, Path("0.png"))',
        'upload.info = original',
        'gray_chain = [{"op": "grayscale"}]',
        'result = {',
        '    "expected": st.expected_result(data["chain"], original).shape,',
        '    "made": st.read_image_info(blob["made"]).shape,',
        '    "shapes": [[p.kind + ": " + p.message for _, p in st.check_shapes([(upload, download(name))], True,',
        '                data["chain"])] for name in ("made", "unresized")],',
        '    "grey": [not st.check_filtered(blob[name], "image/png", st.chain_makes_gray(chain))[1]',
        '             for name, chain in (("grey", gray_chain), ("original", gray_chain),',
        '                                 ("original", [{"op": "flip"}]),',
        '                                 ("original", gray_chain + [{"op": "sharpen", "sigma": 1}]))],',
        '}',
      ].join('\n'),
      {
        chain,
        files: Object.fromEntries(
          Object.entries({ original, made, unresized, grey: greyRgb }).map(([name, data]) => [
            name,
            data.toString('base64'),
          ]),
        ),
      },
    );
    expect(result.expected).to.equal('webp 40x27');
    expect(result.made).to.equal('webp 40x27');
    expect(result.shapes).to.deep.equal([
      [],
      ['verify: format or size not what the chain makes: original png 96x64, expected webp 40x27, result webp 96x64'],
    ]);
    // a grey PNG passes, a colour one fails where the chain makes grey; no check where it does not (no
    // grayscale step, or a sharpen after it)
    expect(result.grey).to.deep.equal([true, false, true, true]);
  });
});

describe('stress_test.py inside: a request cut short by Ctrl-C', function () {
  this.timeout(30_000);
  let server: HttpServer;
  let url: string;
  const held: ServerResponse[] = [];

  before(async () => {
    // GET /slow never answers (until the end); DELETE /workloads/w answers what a deletion freed
    server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/slow') {
        held.push(res);
        return;
      }
      if (req.method === 'DELETE' && req.url === '/workloads/w') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ removed_images: 3, removed_bytes: 300 }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const res of held.splice(0)) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("leaves no half-used connection behind: the cleanup's DELETE that follows goes through", async () => {
    // the interrupt comes while the request waits for its answer, as a Ctrl-C during a poll of the status
    const outcome = await inPython<string>(
      [
        'import signal',
        'def interrupt(*_): raise KeyboardInterrupt',
        'signal.signal(signal.SIGALRM, interrupt)',
        'client = st.ApiClient(data["url"], "token")',
        'signal.setitimer(signal.ITIMER_REAL, 0.3)',
        'try:',
        '    client.request_json("GET", "/slow")',
        '    result = "not interrupted"',
        'except KeyboardInterrupt:',
        '    result = st.delete_run_workload(client, "w")[0]',
      ].join('\n'),
      { url },
    );
    expect(held).to.have.length(1);
    expect(outcome).to.match(/^deleted the workload: freed 3 images, 300 B \(300 bytes\)$/);
  });
});
