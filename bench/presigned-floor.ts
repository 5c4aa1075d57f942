// The least server CPU per image the presigned way can cost on this machine. Per image the server must
// (architecture.md, the presigned byte path): check the object an upload slot received and the result a worker
// put (each a ranged GET of the store, `inspect`), presign the slot's PUT, the job's GET and PUT and the checks'
// GETs, call the worker (`assign`, a bus request and its reply), take the worker's report (an HTTP request and
// its answer), and sync a record. This process does exactly that per image, with the project's own S3 image
// store (on the test S3 server, as in bench/byte-paths.ts), its bus, node's HTTP server and a synced append: none
// of the rest of the server (no routing, no tokens, no datastore, no scheduler). A second process plays the worker:
// it answers each `assign` and then reports over HTTP.
//
// Prints this process's CPU per image (all its threads, less its CPU at rest over the same time) at a steady rate
// (env RATE, default 35 images/s, about what bench/byte-paths.ts reaches with s3rver on the same cores) and back
// to back, first each part alone at that rate. argv: images per measurement (default 300); env HEAD_BYTES (what a
// check reads, default 16 KiB), WARMUP (images first, not counted, default 300).
// Run it alone: s3rver and the second process share the machine's cores with it.
import { fork } from 'node:child_process';
import { closeSync, fdatasync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { STORED_HEAD_BYTES } from '../api/upload.js';
import { connectRpc, method, serveRpc } from '../common/bus/index.js';
import { openImageStore } from '../controller/image-store/index.js';
import { freePorts } from '../test/helpers/ports.js';
import { makePhotoLikeImage } from '../test/helpers/images.js';
import { setEnv, startS3Server, storeConfigFor } from '../test/helpers/s3-server.js';

const SELF = fileURLToPath(import.meta.url);
const WARMUP = Number(process.env.WARMUP ?? 300);
const RATE = Number(process.env.RATE ?? 35);
/** What each check reads of the object; the server reads 16 KiB (a JPEG's header may lie that far in). */
const HEAD_BYTES = Number(process.env.HEAD_BYTES ?? STORED_HEAD_BYTES);
const OBJECTS = 16;
const reportSchema = z.object({ job_id: z.string(), lease_id: z.string() });
const acceptedSchema = z.object({ accepted: z.boolean() });

/** The worker's part: answers `assign` on its REP socket, then reports the job to the API port. */
async function workerMain(rpcPort: number, apiPort: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const report = (body: string): void => {
    const request = http.request(
      { host: '127.0.0.1', port: apiPort, path: '/results', method: 'POST', agent },
      (response) => response.resume(),
    );
    request.setHeader('content-type', 'application/json');
    request.setHeader('content-length', Buffer.byteLength(body));
    request.end(body);
  };
  serveRpc(
    `tcp://127.0.0.1:${rpcPort}`,
    {
      assign: method(z.object({ job_id: z.string(), lease_id: z.string(), token: z.string() }), (params) => {
        setImmediate(() => report(JSON.stringify({ job_id: params.job_id, lease_id: params.lease_id })));
        return { accepted: true };
      }),
    },
    () => undefined,
  );
  process.send?.('ready');
}

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const COUNT = Number(process.argv[2] ?? 300);
  const s3 = await startS3Server();
  const restoreEnv = setEnv(s3.env);
  const dir = await mkdtemp(path.join(tmpdir(), 'dpip-floor-'));
  const journal = openSync(path.join(dir, 'journal'), 'a');
  const rpcPort = await freePorts();
  let worker: ReturnType<typeof fork> | undefined;
  const server = http.createServer();
  try {
    const store = await openImageStore({ kind: 's3', ...storeConfigFor(s3) });
    const frame = await makePhotoLikeImage(1920, 1080, 1);
    for (let index = 0; index < OBJECTS; index++) {
      await store.put({ kind: 'memory', data: frame }, `floor/original-${index}.jpg`, 'image/jpeg');
      await store.put({ kind: 'memory', data: frame }, `floor/result-${index}.jpg`, 'image/jpeg');
    }

    // the worker's report: node's HTTP server, the body read and parsed, a JSON answer
    const waiting = new Map<string, () => void>();
    server.on('request', (request: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const reported = reportSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        const body = JSON.stringify({ job_id: reported.job_id, status: 'done', image_id: reported.job_id });
        response.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        response.end(body);
        waiting.get(reported.job_id)?.();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const apiPort = (server.address() as AddressInfo).port;
    worker = fork(SELF, ['worker', String(rpcPort), String(apiPort)]);
    await new Promise((resolve) => worker!.once('message', resolve));
    const rpc = connectRpc(`tcp://127.0.0.1:${rpcPort}`);

    const record = Buffer.alloc(300, 0x61);
    const synced = (): Promise<void> => {
      writeSync(journal, record);
      return new Promise((resolve, reject) => fdatasync(journal, (error) => (error ? reject(error) : resolve())));
    };

    let sequence = 0;
    /** The parts of one image's work, each on its own and all together. */
    const parts = {
      'the two object checks (ranged GETs, with their presigns)': async (index: number): Promise<void> => {
        if (!(await store.inspect(`floor/original-${index}.jpg`, HEAD_BYTES))) throw new Error('no original');
        if (!(await store.inspect(`floor/result-${index}.jpg`, HEAD_BYTES))) throw new Error('no result');
      },
      "the slot's and the job's three presigns": async (index: number): Promise<void> => {
        await store.presign('PUT', `floor/slot-${index}.jpg`, 900, 'image/jpeg', frame.length);
        await store.presign('GET', `floor/original-${index}.jpg`, 900);
        await store.presign('PUT', `floor/result-${index}.jpg`, 900, 'image/jpeg');
      },
      'the assign and its reply, then the report and its answer': async (): Promise<void> => {
        const jobId = `job-${sequence}`;
        const reported = new Promise<void>((resolve) => waiting.set(jobId, resolve));
        await rpc.call(
          'assign',
          { job_id: jobId, lease_id: `lease-${sequence}`, token: 'x'.repeat(64) },
          acceptedSchema,
        );
        await reported;
        waiting.delete(jobId);
      },
      'a synced record': (): Promise<void> => synced(),
    };
    const oneImage = async (only?: (index: number) => Promise<void>): Promise<void> => {
      sequence++;
      const index = sequence % OBJECTS;
      for (const part of only ? [only] : Object.values(parts)) await part(index);
    };

    for (let index = 0; index < WARMUP; index++) await oneImage();

    // this process at rest, for as long as a steady run takes
    const restMs = (COUNT / RATE) * 1000;
    const restStart = cpuMs();
    await sleep(restMs);
    const restPerMs = (cpuMs() - restStart) / restMs;

    const measure = async (
      paced: boolean,
      only?: (index: number) => Promise<void>,
    ): Promise<{ perImage: number; perSecond: number }> => {
      const start = cpuMs();
      const started = performance.now();
      for (let index = 0; index < COUNT; index++) {
        await oneImage(only);
        if (paced) {
          const due = started + ((index + 1) * 1000) / RATE;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
        }
      }
      const elapsed = performance.now() - started;
      return { perImage: (cpuMs() - start - restPerMs * elapsed) / COUNT, perSecond: COUNT / (elapsed / 1000) };
    };
    console.log(
      `presigned floor: per image 2 ranged GETs of ${HEAD_BYTES} bytes (the project's S3 store on ` +
        `s3rver), 5 presigns, an assign and its reply on the bus, a report received and answered by node's HTTP ` +
        `server, a synced append; ${COUNT} images a measurement after ${WARMUP}`,
    );
    console.log(`  at rest: ${(restPerMs * 1000).toFixed(1)} ms of CPU a second (subtracted below)`);
    for (const [name, part] of Object.entries(parts)) {
      const alone = await measure(true, part);
      console.log(`  ${name}, alone at ${alone.perSecond.toFixed(1)}/s: ${alone.perImage.toFixed(2)} ms per image`);
    }
    const steady = await measure(true);
    const flat = await measure(false);
    console.log(
      `  all of it, steady (${steady.perSecond.toFixed(1)} images/s): **${steady.perImage.toFixed(2)} ms** per image`,
    );
    console.log(
      `  all of it, back to back (${flat.perSecond.toFixed(1)} images/s): **${flat.perImage.toFixed(2)} ms**`,
    );
    rpc.close();
  } finally {
    worker?.kill();
    server.close();
    closeSync(journal);
    restoreEnv();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'worker') await workerMain(Number(process.argv[3]), Number(process.argv[4]));
else await main();
