import { expect } from 'chai';
import { heartbeatParamsSchema, registerParamsSchema, type Gpu } from '../../common/protocol.js';
import { boundedGpu, GpuSampler, NO_GPU, parseNvidiaSmi, probeGpu } from '../../worker/gpu.js';

/** A read the test settles by hand, counting how often it was started. */
function manualRead(): { read: () => Promise<Gpu>; started: number; settle(gpu: Gpu | Error): Promise<void> } {
  let pending: ((gpu: Gpu | Error) => void)[] = [];
  const handle = {
    started: 0,
    read: () =>
      new Promise<Gpu>((resolve, reject) => {
        handle.started += 1;
        pending.push((gpu) => (gpu instanceof Error ? reject(gpu) : resolve(gpu)));
      }),
    async settle(gpu: Gpu | Error) {
      const waiting = pending;
      pending = [];
      for (const finish of waiting) finish(gpu);
      // let the sampler's callbacks run
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
  return handle;
}

const RESOURCES = { cpu_load: 10, cores: 4, mem_free: 1e9, mem_total: 2e9 };

describe('the GPU in each heartbeat', () => {
  describe('nvidia-smi output', () => {
    it('reads utilization, free and total memory and the name, and reports the GPU with the most free memory', () => {
      const output = '87, 1200, 8192, NVIDIA GeForce RTX 3070\n3, 22000, 24576, NVIDIA RTX A5000\n';
      expect(parseNvidiaSmi(output)).to.deep.equal({
        present: true,
        model: 'NVIDIA RTX A5000',
        utilization: 3,
        memory_free_mb: 22000,
        memory_total_mb: 24576,
      });
    });

    it('keeps a comma in the name, and leaves out what the GPU reports as [N/A]', () => {
      expect(parseNvidiaSmi('[N/A], 1000, 2000, Tesla, rev 2\n')).to.deep.equal({
        present: true,
        model: 'Tesla, rev 2',
        memory_free_mb: 1000,
        memory_total_mb: 2000,
      });
    });

    it('is no GPU when nvidia-smi lists none', () => {
      expect(parseNvidiaSmi('')).to.deep.equal(NO_GPU);
      expect(parseNvidiaSmi('No devices were found\n')).to.deep.equal(NO_GPU);
    });
  });

  it('bounds what it reports to what the bus accepts: clamped, or left out when not a number', () => {
    const gpu = boundedGpu({ model: 'x'.repeat(300), utilization: 140, memory_free_mb: 9000, memory_total_mb: 8000 });
    expect(gpu).to.deep.equal({
      present: true,
      model: 'x'.repeat(200),
      utilization: 100,
      memory_free_mb: 8000,
      memory_total_mb: 8000,
    });
    expect(boundedGpu({ utilization: Number.NaN, memory_free_mb: -3 })).to.deep.equal({
      present: true,
      memory_free_mb: 0,
    });
    expect(heartbeatParamsSchema.safeParse({ token: 't', resources: { ...RESOURCES, gpu }, running: [] }).success).to.be
      .true;
  });

  describe('the sampler', () => {
    it('reads at most once per interval, one read at a time, and a heartbeat takes the latest reading', async () => {
      const gpu = manualRead();
      const sampler = new GpuSampler({ initial: { present: true, utilization: 0 }, read: gpu.read }, 5000);
      sampler.poll(0);
      sampler.poll(1000);
      expect(gpu.started, 'one read in flight').to.equal(1);
      expect(sampler.current()).to.deep.equal({ present: true, utilization: 0 });
      await gpu.settle({ present: true, utilization: 60 });
      expect(sampler.current()).to.deep.equal({ present: true, utilization: 60 });
      sampler.poll(4999);
      expect(gpu.started, 'not again within the interval').to.equal(1);
      sampler.poll(5000);
      expect(gpu.started).to.equal(2);
      // a read slower than the interval is not joined by another
      sampler.poll(10_000);
      sampler.poll(15_000);
      expect(gpu.started).to.equal(2);
      await gpu.settle({ present: true, utilization: 20 });
      sampler.poll(15_000);
      expect(gpu.started).to.equal(3);
    });

    it('reports no GPU after a failed read, and the GPU again once a read succeeds', async () => {
      const gpu = manualRead();
      const sampler = new GpuSampler({ initial: { present: true, utilization: 5 }, read: gpu.read }, 5000);
      sampler.poll(0);
      await gpu.settle(new Error('NVIDIA-SMI has failed'));
      expect(sampler.current()).to.deep.equal(NO_GPU);
      sampler.poll(5000);
      await gpu.settle({ present: true, utilization: 7 });
      expect(sampler.current()).to.deep.equal({ present: true, utilization: 7 });
    });

    it('never reads again when the GPU cannot be read (no GPU, or no nvidia-smi)', () => {
      const sampler = new GpuSampler({ initial: NO_GPU, read: null }, 5000);
      for (let now = 0; now < 60_000; now += 1000) sampler.poll(now);
      expect(sampler.current()).to.deep.equal(NO_GPU);
    });
  });

  describe('finding the GPU at start', () => {
    it('uses nvidia-smi, read again later, when it runs and sees a GPU', async () => {
      let systemInformation = 0;
      const found = { present: true, model: 'A', utilization: 1 };
      const probe = await probeGpu(
        async () => found,
        async () => {
          systemInformation += 1;
          return NO_GPU;
        },
      );
      expect(probe.initial).to.deep.equal(found);
      expect(probe.read).to.be.a('function');
      expect(systemInformation).to.equal(0);
    });

    it('falls back to one systeminformation probe, never read again, when nvidia-smi fails or sees none', async () => {
      const missing = Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
      const onlySi = await probeGpu(
        () => Promise.reject(missing),
        async () => ({ present: true, model: 'iGPU', memory_total_mb: 512 }),
      );
      expect(onlySi).to.deep.equal({ initial: { present: true, model: 'iGPU', memory_total_mb: 512 }, read: null });
      const none = await probeGpu(
        async () => NO_GPU,
        async () => NO_GPU,
      );
      expect(none).to.deep.equal({ initial: NO_GPU, read: null });
    });
  });

  describe('the bus refuses GPU numbers out of bounds', () => {
    const heartbeat = (gpu: unknown) => ({ token: 't', resources: { ...RESOURCES, gpu }, running: [] });
    const register = (gpu: unknown) => ({
      secret: 's',
      name: 'w',
      instance_id: 'i',
      tags: [],
      rpc_address: 'tcp://127.0.0.1:1',
      slots: 1,
      engine: 'jimp',
      filters: ['blur'],
      resources: { ...RESOURCES, gpu },
      running: [],
    });
    // JSON.parse turns 1e999 into Infinity: what an attacker's message can hold
    const cases: [string, unknown][] = [
      ['a utilization over 100', { present: true, utilization: 101 }],
      ['a negative utilization', { present: true, utilization: -1 }],
      ['an infinite utilization', JSON.parse('{"present":true,"utilization":1e999}')],
      ['a huge free memory', { present: true, memory_free_mb: 1e300 }],
      ['a negative free memory', { present: true, memory_free_mb: -5 }],
      ['an infinite total memory', JSON.parse('{"present":true,"memory_total_mb":1e999}')],
      ['a utilization that is a string', { present: true, utilization: '50' }],
    ];
    for (const [title, gpu] of cases) {
      it(`refuses ${title}, in a heartbeat and a registration`, () => {
        expect(heartbeatParamsSchema.safeParse(heartbeat(gpu)).success).to.equal(false);
        expect(registerParamsSchema.safeParse(register(gpu)).success).to.equal(false);
      });
    }

    it('accepts a GPU report of an older worker (no utilization) and of a newer one', () => {
      expect(heartbeatParamsSchema.safeParse(heartbeat({ present: true, memory_free_mb: 100 })).success).to.equal(true);
      const full = { present: true, model: 'A', memory_total_mb: 8192, memory_free_mb: 0, utilization: 100 };
      expect(heartbeatParamsSchema.safeParse(heartbeat(full)).success).to.equal(true);
    });

    it('refuses a machine memory beyond any machine, or infinite', () => {
      const resources = { ...RESOURCES, mem_total: JSON.parse('1e999') as number, gpu: NO_GPU };
      expect(heartbeatParamsSchema.safeParse({ token: 't', resources, running: [] }).success).to.equal(false);
      const huge = { ...RESOURCES, mem_free: 1e20, gpu: NO_GPU };
      expect(heartbeatParamsSchema.safeParse({ token: 't', resources: huge, running: [] }).success).to.equal(false);
    });
  });
});
