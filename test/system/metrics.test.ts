// GET /metrics on a real server with a real worker process: the Prometheus text parses, and its
// counters and histograms move when a workload runs. Also the metrics token (flag and environment)
// and the request ids on responses and log lines.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import request from 'supertest';
import { parseServerArgs } from '../../bin/server-cli.js';
import { startServer, type Server } from '../../bin/server.js';
import { TestClient } from '../helpers/api.js';
import { makeTestImage } from '../helpers/images.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { parsePrometheus, type Exposition } from '../helpers/prometheus.js';
import { liveWorker } from '../helpers/restart.js';
import { makeDirs, spawnServer, spawnWorker, testServerConfig, TEST_SECRET, type TestDirs } from '../helpers/system.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('metrics and request ids', function () {
  this.timeout(120_000);
  let dirs: TestDirs;
  let server: Server;
  let url: string;
  const logLines: Record<string, unknown>[] = [];

  async function scrape(): Promise<Exposition> {
    const res = await request(url).get('/metrics');
    expect(res.status, res.text).to.equal(200);
    expect(res.headers['content-type']).to.equal('text/plain; version=0.0.4; charset=utf-8');
    return parsePrometheus(res.text);
  }

  before(async () => {
    dirs = await makeDirs();
    const config = await testServerConfig(dirs);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n'))
          if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    server = await startServer(config, pino({ name: 'test-server', level: 'debug', base: undefined }, sink));
    url = `http://127.0.0.1:${server.api.port}`;
    spawnWorker({ controllerPort: config.controller.port, name: 'metrics-worker', engine: 'sharp', slots: 2 });
    await waitFor(
      'the worker to register',
      async () => liveWorker(server, 'metrics-worker')?.state === 'alive',
      30_000,
      20,
    );
  });

  after(async () => {
    await killAll();
    await server?.close();
    await dirs?.remove();
  });

  it('serves the Prometheus text format with every family declared', async () => {
    const metrics = await scrape();
    const expected: Record<string, string> = {
      dpip_jobs: 'gauge',
      dpip_job_duration_seconds: 'histogram',
      dpip_job_queue_wait_seconds: 'histogram',
      dpip_jobs_finished_total: 'counter',
      dpip_uploads_total: 'counter',
      dpip_upload_bytes_total: 'counter',
      dpip_workers: 'gauge',
      dpip_worker_cpu_load_percent: 'gauge',
      dpip_worker_memory_used_ratio: 'gauge',
      dpip_http_requests_total: 'counter',
      dpip_http_request_duration_seconds: 'histogram',
      process_cpu_user_seconds_total: 'counter',
    };
    for (const [name, type] of Object.entries(expected)) expect(metrics.types.get(name), name).to.equal(type);
    for (const state of ['queued', 'assigned', 'running', 'done', 'failed'])
      expect(metrics.value('dpip_jobs', { state }), state).to.be.a('number');
    expect(metrics.value('dpip_workers', { state: 'alive' })).to.equal(1);
    expect(metrics.value('dpip_worker_cpu_load_percent', { worker: 'metrics-worker' })).to.be.within(0, 100);
    expect(metrics.value('dpip_worker_memory_used_ratio', { worker: 'metrics-worker' })).to.be.within(0, 1);
  });

  it('moves its counters and histograms when a workload runs', async () => {
    const client = await TestClient.login(url, 'alice', 'alice-pw');
    const before = await scrape();
    const workload = await client.createWorkload({ workload_name: `metrics-${Date.now()}` });
    let bytes = 0;
    for (let index = 0; index < 3; index++) {
      const image = await makeTestImage(120, 80, 'image/png', 50 + index);
      bytes += image.length;
      expect((await client.upload(workload.workload_id, image, `${index}.png`, 'image/png')).status).to.equal(201);
    }
    await client.waitForCompletion(workload.workload_id);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      after.sum(name, labels) - before.sum(name, labels);

    expect(delta('dpip_jobs', { state: 'done' })).to.equal(3);
    expect(delta('dpip_jobs_finished_total', { state: 'done' })).to.equal(3);
    expect(delta('dpip_uploads_total', { type: 'original' })).to.equal(3);
    expect(delta('dpip_uploads_total', { type: 'filtered' })).to.equal(3);
    expect(delta('dpip_upload_bytes_total', { type: 'original' })).to.equal(bytes);
    expect(delta('dpip_upload_bytes_total', { type: 'filtered' })).to.be.above(0);
    expect(delta('dpip_job_duration_seconds_count', { outcome: 'done' })).to.equal(3);
    expect(delta('dpip_job_duration_seconds_sum', { outcome: 'done' })).to.be.above(0);
    expect(delta('dpip_job_queue_wait_seconds_count')).to.be.at.least(3);
    // the user's three uploads and the worker's three results
    expect(delta('dpip_http_requests_total', { method: 'POST', route: '/images', status: '201' })).to.equal(6);
    expect(delta('dpip_http_requests_total', { method: 'POST', route: '/workloads', status: '201' })).to.equal(1);
    expect(
      delta('dpip_http_request_duration_seconds_count', { method: 'GET', route: '/workloads/:id' }),
    ).to.be.at.least(1);
    expect(
      after.value('dpip_http_request_duration_seconds_bucket', { method: 'GET', route: '/workloads/:id', le: '+Inf' }),
    ).to.equal(after.value('dpip_http_request_duration_seconds_count', { method: 'GET', route: '/workloads/:id' }));
  });

  it('labels requests by route, never by id, and unknown paths as unmatched', async () => {
    await request(url).get('/no-such-path/12345');
    await request(url).get('/workloads/0d4783f5-10a4-41d2-9345-4c65fdf9d3fd');
    const metrics = await scrape();
    expect(
      metrics.value('dpip_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }),
    ).to.be.at.least(1);
    expect(
      metrics.value('dpip_http_requests_total', { method: 'GET', route: '/workloads/:id', status: '401' }),
    ).to.be.at.least(1);
    const routes = new Set(
      metrics.samples
        .filter((sample) => sample.name === 'dpip_http_requests_total')
        .map((sample) => sample.labels.route),
    );
    for (const route of routes) expect(route).not.to.match(/[0-9a-f]{8}-|12345/);
  });

  it(
    'gives every response a request id, ' + 'keeps a plain one the caller sent, and logs each request with it',
    async () => {
      const fresh = await request(url).get('/status');
      expect(fresh.headers['x-request-id']).to.match(UUID);
      const kept = await request(url).get('/status').set('x-request-id', 'trace-42.a_b:c');
      expect(kept.headers['x-request-id']).to.equal('trace-42.a_b:c');
      const replaced = await request(url).get('/status').set('x-request-id', 'bad id with spaces');
      expect(replaced.headers['x-request-id']).to.match(UUID);
      await waitFor(
        'the request log line',
        async () => logLines.find((line) => line.request_id === 'trace-42.a_b:c' && line.msg === 'request'),
        5_000,
        20,
      );
      const line = logLines.find((item) => item.request_id === 'trace-42.a_b:c')!;
      expect(line).to.include({ method: 'GET', path: '/status', route: '/status', status: 401 });
      // job log lines name their job: each of the three jobs' assignment, as running, or, when the worker's
      // result arrived before the assignment's answer (a 1 ms job), as a start refused because it was done
      const jobLines = logLines.filter((item) => item.msg === 'job running' || item.msg === 'start refused');
      for (const item of jobLines) expect(item.job_id).to.match(UUID);
      expect(new Set(jobLines.map((item) => item.job_id)).size).to.be.at.least(3);
    },
  );

  describe('the metrics token', () => {
    it('is read from --metrics-token or DPIP_METRICS_TOKEN at the edge', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'dpip-cli-'));
      try {
        const fromFlag = await parseServerArgs(
          ['--metrics-token', 'from-flag', '--data-dir', dataDir, '--secret', TEST_SECRET],
          {},
        );
        expect(fromFlag.server.api.metricsToken).to.equal('from-flag');
        // yargs reads DPIP_* from the process environment, as the dpip command does
        process.env.DPIP_METRICS_TOKEN = 'from-env';
        try {
          const fromEnv = await parseServerArgs(['--data-dir', dataDir, '--secret', TEST_SECRET], process.env);
          expect(fromEnv.server.api.metricsToken).to.equal('from-env');
        } finally {
          delete process.env.DPIP_METRICS_TOKEN;
        }
        const none = await parseServerArgs(['--data-dir', dataDir, '--secret', TEST_SECRET], {});
        expect(none.server.api.metricsToken).to.equal(null);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    it('protects GET /metrics on a server started with it', async () => {
      const tokenDirs = await makeDirs();
      try {
        const protectedServer = await spawnServer(tokenDirs, ['--metrics-token', 'scrape-secret']);
        const user = await TestClient.login(protectedServer.url, 'alice', 'alice-pw');
        for (const authorization of [undefined, 'Bearer wrong', `Bearer ${user.token}`]) {
          const req = request(protectedServer.url).get('/metrics');
          const res = await (authorization ? req.set('authorization', authorization) : req);
          expect(res.status, String(authorization)).to.equal(401);
          expect((res.body as { error: { code: number } }).error.code).to.equal(401);
        }
        const res = await request(protectedServer.url).get('/metrics').set('authorization', 'Bearer scrape-secret');
        expect(res.status).to.equal(200);
        expect(parsePrometheus(res.text).types.get('dpip_jobs')).to.equal('gauge');
        await protectedServer.process.kill('SIGTERM');
      } finally {
        await tokenDirs.remove();
      }
    });
  });
});
