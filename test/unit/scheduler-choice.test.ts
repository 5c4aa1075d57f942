import { expect } from 'chai';
import type { Resources } from '../../common/protocol.js';
import type { JobNeeds, WorkerCandidate } from '../../controller/index.js';
import { canRun, chooseWorker, GPU_ROOM_MB, gpuFree, scoreWorker } from '../../scheduler/index.js';

const GB = 1024 ** 3;
/** A job's needs: one operation (a course filter's chain), no format of its own, these tags. */
function job(operation: string, tags: string[] = [], format: JobNeeds['format'] = null): { needs: JobNeeds } {
  return { needs: { chain: false, operations: [operation], format, tags: [...tags].sort() } };
}

const JOB = job('blur');

/** A worker half loaded, half its memory free, four slots, no GPU, that runs blur and grayscale. */
function candidate(
  id: string,
  overrides: Partial<Omit<WorkerCandidate, 'resources'>> = {},
  resources: Partial<Resources> = {},
): WorkerCandidate {
  return {
    id,
    name: id,
    token: `token-of-${id}`,
    rpc_address: 'tcp://127.0.0.1:1',
    slots: 4,
    free_slots: 4,
    tags: [],
    filters: ['blur', 'grayscale'],
    formats: [],
    chains: true,
    sees_images: false,
    assign_many: false,
    ...overrides,
    operations: overrides.operations ?? overrides.filters ?? ['blur', 'grayscale'],
    resources: { cpu_load: 50, cores: 4, mem_free: 4 * GB, mem_total: 8 * GB, gpu: { present: false }, ...resources },
  };
}

/** The free slots of a pass, as the scheduler starts one: each worker's own count, in the order given. */
function freeSlots(...workers: WorkerCandidate[]): Map<WorkerCandidate, number> {
  return new Map(workers.map((worker) => [worker, worker.free_slots]));
}

/** Places `count` jobs as a scheduler pass does, taking a slot from each chosen worker; the ids chosen. */
function pass(free: Map<WorkerCandidate, number>, count: number): (string | null)[] {
  const chosen: (string | null)[] = [];
  for (let index = 0; index < count; index++) {
    const best = chooseWorker(free, JOB);
    chosen.push(best?.id ?? null);
    if (best) free.set(best, free.get(best)! - 1);
  }
  return chosen;
}

describe('scheduler: choosing a worker', () => {
  describe('scoreWorker', () => {
    it('scores an idle worker with all its memory and slots free and a free GPU 1, a saturated one 0', () => {
      const idle = candidate(
        'idle',
        {},
        { cpu_load: 0, mem_free: 8 * GB, gpu: { present: true, memory_free_mb: 512 } },
      );
      expect(scoreWorker(idle, 4)).to.be.closeTo(1, 1e-9);
      const saturated = candidate('busy', {}, { cpu_load: 100, mem_free: 0 });
      expect(scoreWorker(saturated, 0)).to.equal(0);
    });

    it('weighs free CPU 0.4, free memory 0.3 and free slots 0.2 of the score', () => {
      const base = scoreWorker(candidate('a'), 4);
      expect(scoreWorker(candidate('b', {}, { cpu_load: 25 }), 4) - base).to.be.closeTo(0.4 * 0.25, 1e-9);
      expect(scoreWorker(candidate('c', {}, { mem_free: 6 * GB }), 4) - base).to.be.closeTo(0.3 * 0.25, 1e-9);
      expect(scoreWorker(candidate('d'), 1) - base).to.be.closeTo(-0.2 * 0.75, 1e-9);
    });

    it('scores a free GPU 0.1 above a busy one (no free GPU memory) or none, all else equal', () => {
      const free = candidate('free', {}, { gpu: { present: true, memory_total_mb: 8000, memory_free_mb: 6000 } });
      const busy = candidate('busy', {}, { gpu: { present: true, memory_total_mb: 8000, memory_free_mb: 0 } });
      const none = candidate('none');
      expect(scoreWorker(free, 4) - scoreWorker(busy, 4)).to.be.closeTo(0.1, 1e-9);
      expect(scoreWorker(busy, 4)).to.equal(scoreWorker(none, 4));
      // a GPU that does not report its free memory counts as free
      const unknown = candidate('unknown', {}, { gpu: { present: true } });
      expect(scoreWorker(unknown, 4)).to.equal(scoreWorker(free, 4));
    });

    it('stays within 0..1 over the whole range of each reading, free memory up to the total', () => {
      for (const cpu_load of [0, 1, 37.5, 99, 100])
        for (const mem_free of [0, 1, 3 * GB, 8 * GB])
          for (const free of [0, 1, 3, 4])
            for (const memory_free_mb of [undefined, 0, 100]) {
              const worker = candidate('w', {}, { cpu_load, mem_free, gpu: { present: true, memory_free_mb } });
              expect(scoreWorker(worker, free)).to.be.within(0, 1);
            }
    });

    it('stays within 0..1 for readings out of range: a load over 100%, no slots, no memory total', () => {
      expect(scoreWorker(candidate('w', {}, { cpu_load: 250 }), 4)).to.be.within(0, 1);
      const idle = candidate('idle', {}, { cpu_load: -20, mem_free: 8 * GB, gpu: { present: true } });
      expect(scoreWorker(idle, 4)).to.be.within(0, 1);
      expect(scoreWorker(candidate('w', { slots: 0 }), 0)).to.be.within(0, 1);
      expect(scoreWorker(candidate('w', {}, { mem_total: 0 }), 4)).to.be.within(0, 1);
    });

    it('stays within 0..1 when a worker reports more free memory than it has', () => {
      const boasting = candidate('boasting', {}, { cpu_load: 100, mem_free: 800 * GB, mem_total: 8 * GB });
      expect(scoreWorker(boasting, 1)).to.be.within(0, 1);
      const idle = candidate('idle', {}, { cpu_load: 0, mem_free: 8 * GB });
      expect(chooseWorker(freeSlots(boasting, idle), JOB)?.id).to.equal('idle');
    });
  });

  describe('canRun', () => {
    it('needs the workload filter and every one of its tags; extra worker tags do not matter', () => {
      const worker = candidate('w', { tags: ['gpu', 'eu-west'], filters: ['blur'] });
      expect(canRun(worker, job('blur', []).needs)).to.equal(true);
      expect(canRun(worker, job('blur', ['gpu']).needs)).to.equal(true);
      expect(canRun(worker, job('blur', ['eu-west', 'gpu']).needs)).to.equal(true);
      expect(canRun(worker, job('blur', ['gpu', 'us-east']).needs)).to.equal(false);
      expect(canRun(worker, job('grayscale', []).needs)).to.equal(false);
      expect(canRun(candidate('plain', { filters: ['blur'] }), job('blur', ['gpu']).needs)).to.equal(false);
    });
  });

  describe('canRun: chains and formats', () => {
    it('gives a workload of operations only to a worker that runs chains, every step and the format', () => {
      const chain = (operations: string[], format: JobNeeds['format'] = null): JobNeeds => ({
        chain: true,
        operations,
        format,
        tags: [],
      });
      const older = candidate('older', { chains: false, operations: ['blur', 'grayscale'] });
      const jimp = candidate('jimp', { operations: ['grayscale', 'resize'], formats: ['png', 'jpeg'] });
      const sharp = candidate('sharp', { operations: ['grayscale', 'resize'], formats: ['png', 'jpeg', 'webp'] });
      expect(canRun(older, chain(['grayscale'])), 'a worker that knows only filters').to.equal(false);
      expect(canRun(older, job('grayscale').needs), 'a course workload').to.equal(true);
      expect(canRun(jimp, chain(['grayscale', 'resize']))).to.equal(true);
      expect(canRun(jimp, chain(['grayscale', 'resize'], 'webp'))).to.equal(false);
      expect(canRun(sharp, chain(['grayscale', 'resize'], 'webp'))).to.equal(true);
      expect(canRun(sharp, chain(['sharpen']))).to.equal(false);
      expect(chooseWorker(freeSlots(jimp, sharp), { needs: chain(['resize'], 'webp') })?.id).to.equal('sharp');
    });
  });

  describe('chooseWorker', () => {
    it('picks the eligible worker with the best score, whatever the order they are listed in', () => {
      const loaded = candidate('loaded', {}, { cpu_load: 90 });
      const light = candidate('light', {}, { cpu_load: 10 });
      expect(chooseWorker(freeSlots(loaded, light), JOB)?.id).to.equal('light');
      expect(chooseWorker(freeSlots(light, loaded), JOB)?.id).to.equal('light');
      const full = candidate('full', {}, { mem_free: 0 });
      expect(chooseWorker(freeSlots(full, candidate('roomy')), JOB)?.id).to.equal('roomy');
      expect(chooseWorker(freeSlots(candidate('busy', { free_slots: 1 }), candidate('free')), JOB)?.id).to.equal(
        'free',
      );
    });

    it('prefers a worker with a free GPU to one whose GPU is busy, all else equal', () => {
      const busy = candidate('busy', {}, { gpu: { present: true, memory_free_mb: 0 } });
      const free = candidate('free', {}, { gpu: { present: true, memory_free_mb: 2048 } });
      expect(chooseWorker(freeSlots(busy, free), JOB)?.id).to.equal('free');
      expect(chooseWorker(freeSlots(free, busy), JOB)?.id).to.equal('free');
    });

    it('gives a tie to the worker listed first', () => {
      expect(chooseWorker(freeSlots(candidate('first'), candidate('second')), JOB)?.id).to.equal('first');
    });

    it('skips the best-scoring worker when it lacks the filter or a tag of the workload', () => {
      const best = candidate('best', { tags: ['gpu'], filters: ['grayscale'] }, { cpu_load: 0 });
      const tagged = candidate('tagged', { tags: ['gpu', 'ssd'] }, { cpu_load: 10 });
      const plain = candidate('plain', {}, { cpu_load: 20 });
      const free = freeSlots(best, tagged, plain);
      expect(chooseWorker(free, job('blur', ['gpu']))?.id).to.equal('tagged');
      expect(chooseWorker(free, job('blur', ['gpu', 'ssd']))?.id).to.equal('tagged');
      expect(chooseWorker(free, job('grayscale', ['gpu']))?.id).to.equal('best');
      expect(chooseWorker(free, job('blur', []))?.id).to.equal('tagged');
    });

    it('moves the choice to the other worker as the free slots of the first shrink within a pass', () => {
      // "a" is a little less loaded (+0.04), but each slot taken costs it 0.1
      const a = candidate('a', { slots: 2, free_slots: 2 }, { cpu_load: 40 });
      const b = candidate('b', { slots: 2, free_slots: 2 }, { cpu_load: 50 });
      expect(pass(freeSlots(a, b), 5)).to.deep.equal(['a', 'b', 'a', 'b', null]);
    });

    it('returns null when no worker is eligible: none listed, no free slot, no filter or no tag', () => {
      expect(chooseWorker(new Map(), JOB)).to.equal(null);
      const worker = candidate('w', { tags: ['gpu'] });
      expect(chooseWorker(new Map([[worker, 0]]), JOB)).to.equal(null);
      expect(chooseWorker(freeSlots(worker), job('sepia', []))).to.equal(null);
      expect(chooseWorker(freeSlots(worker), job('blur', ['tpu']))).to.equal(null);
      expect(chooseWorker(freeSlots(worker), JOB)).to.equal(worker);
    });
  });

  describe('the GPU as heartbeats report it (utilization and free memory)', () => {
    const gpu = (utilization: number | undefined, memory_free_mb: number | undefined) => ({
      gpu: {
        present: true,
        memory_total_mb: 8192,
        ...(utilization === undefined ? {} : { utilization }),
        ...(memory_free_mb === undefined ? {} : { memory_free_mb }),
      },
    });

    it('prefers a free GPU (idle, memory free) to a busy one, a full one or none, all else equal', () => {
      const free = candidate('free', {}, gpu(5, 6000));
      const busy = candidate('busy', {}, gpu(95, 6000));
      const full = candidate('full', {}, gpu(5, 40));
      const none = candidate('none');
      for (const other of [busy, full, none]) {
        expect(chooseWorker(freeSlots(other, free), JOB)?.id, `free vs ${other.id}`).to.equal('free');
        expect(chooseWorker(freeSlots(free, other), JOB)?.id, `${other.id} listed second`).to.equal('free');
      }
      // a busy GPU still beats none, and the less busy of two wins
      expect(chooseWorker(freeSlots(none, busy), JOB)?.id).to.equal('busy');
      const half = candidate('half', {}, gpu(50, 6000));
      expect(chooseWorker(freeSlots(busy, half), JOB)?.id).to.equal('half');
    });

    it('counts the GPU in proportion to its idle share and its free memory up to the room a job needs', () => {
      expect(gpuFree({ present: false, utilization: 0, memory_free_mb: 8000 })).to.equal(0);
      expect(gpuFree({ present: true })).to.equal(1);
      expect(gpuFree(gpu(0, 8000).gpu)).to.equal(1);
      expect(gpuFree(gpu(0, GPU_ROOM_MB).gpu)).to.equal(1);
      expect(gpuFree(gpu(0, GPU_ROOM_MB / 4).gpu)).to.be.closeTo(0.25, 1e-9);
      expect(gpuFree(gpu(75, 8000).gpu)).to.be.closeTo(0.25, 1e-9);
      expect(gpuFree(gpu(100, 8000).gpu)).to.equal(0);
      expect(gpuFree(gpu(50, 0).gpu)).to.equal(0);
      // out of range (the bus refuses these; the score does not rely on it)
      expect(gpuFree(gpu(250, 8000).gpu)).to.equal(0);
      expect(gpuFree(gpu(-10, -5).gpu)).to.equal(0);
    });

    it('keeps CPU and memory the main signals: a free GPU does not outweigh a clearly lighter load', () => {
      const gpuButLoaded = candidate('gpu', {}, { cpu_load: 60, ...gpu(0, 8000) });
      const lighterNoGpu = candidate('light', {}, { cpu_load: 30 });
      expect(chooseWorker(freeSlots(gpuButLoaded, lighterNoGpu), JOB)?.id).to.equal('light');
      const gpuLessMemory = candidate('gpu-mem', {}, { mem_free: 1 * GB, ...gpu(0, 8000) });
      const roomyNoGpu = candidate('roomy');
      expect(chooseWorker(freeSlots(gpuLessMemory, roomyNoGpu), JOB)?.id).to.equal('roomy');
      // a small difference in load is settled by the GPU
      const gpuSlightlyLoaded = candidate('gpu-near', {}, { cpu_load: 55, ...gpu(10, 8000) });
      expect(chooseWorker(freeSlots(lighterNoGpu, gpuSlightlyLoaded), JOB)?.id).to.equal('light');
      expect(chooseWorker(freeSlots(candidate('plain'), gpuSlightlyLoaded), JOB)?.id).to.equal('gpu-near');
    });

    it('stays within 0..1 with a GPU at every utilization and free memory', () => {
      for (const utilization of [undefined, 0, 30, 100])
        for (const memory_free_mb of [undefined, 0, 100, 8192])
          for (const cpu_load of [0, 100]) {
            const score = scoreWorker(candidate('w', {}, { cpu_load, ...gpu(utilization, memory_free_mb) }), 4);
            expect(score).to.be.within(0, 1);
          }
    });
  });
});
