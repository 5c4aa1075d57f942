import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Resources } from '../../common/protocol.js';
import { openStore, type Collection, type Store } from '../../controller/store/index.js';
import { KEPT_MS, WorkerHistory } from '../../controller/workers/index.js';
import { T0, tempDir, user, type TempDir } from './helpers.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

function report(cpu_load: number, gpu?: Resources['gpu']): Resources {
  return { cpu_load, cores: 4, mem_free: 6e9, mem_total: 8e9, gpu: gpu ?? { present: false } };
}

/** Every store.change from now on, as "collection key". */
function watchChanges(store: Store): string[] {
  const changes: string[] = [];
  const change = store.change.bind(store);
  (store as { change: Store['change'] }).change = (collection: Collection, key: string) => {
    changes.push(`${collection} ${key}`);
    change(collection, key);
  };
  return changes;
}

/** Heartbeats of worker `w1` every `everyMs` from `from` (inclusive) to `to` (exclusive), a tick each second. */
function heartbeats(history: WorkerHistory, from: number, to: number, everyMs: number, cpu = 10): void {
  for (let at = from; at < to; at += everyMs) {
    history.record('w1', report(cpu), at);
    history.tick(at);
  }
}

describe('worker history in the datastore', () => {
  let dir: TempDir;
  let store: Store;
  let history: WorkerHistory;

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore(dir.path);
    history = new WorkerHistory(store);
  });

  afterEach(async () => {
    await store.close();
    await dir.remove();
  });

  it('writes a minute once, whole, when it is over, never a record per heartbeat', () => {
    const changes = watchChanges(store);
    heartbeats(history, T0, T0 + MINUTE, SECOND);
    expect(changes, 'nothing written within the minute').to.deep.equal([]);
    history.record('w1', report(10), T0 + MINUTE);
    expect(changes).to.deep.equal([`worker_minutes w1/${T0}`]);
    expect(store.data.worker_minutes[`w1/${T0}`]!.samples).to.have.length(60);
    heartbeats(history, T0 + MINUTE, T0 + 10 * MINUTE, SECOND);
    expect(changes, 'one write a minute').to.have.length(9);
    expect(new Set(changes).size).to.equal(9);
  });

  it("writes a silent worker's minute when it is over, at the next tick", () => {
    history.record('w1', report(10), T0 + 5 * SECOND);
    expect(history.tick(T0 + 59 * SECOND)).to.equal(false);
    expect(store.data.worker_minutes).to.deep.equal({});
    expect(history.tick(T0 + MINUTE)).to.equal(true);
    expect(store.data.worker_minutes[`w1/${T0}`]!.samples.map((sample) => sample.t)).to.deep.equal([T0 + 5 * SECOND]);
  });

  it('keeps one sample per 250 ms at most, however fast the heartbeats come', () => {
    for (let at = T0; at < T0 + SECOND; at += 10) history.record('w1', report(10), at);
    expect(history.recent('w1', 1000, T0 + SECOND).map((sample) => sample.t - T0)).to.deep.equal([0, 250, 500, 750]);
  });

  it('keeps the report as a sample: CPU, memory in use, and the GPU where it reports', () => {
    history.record('w1', report(12.345, { present: true, utilization: 40.04, memory_free_mb: 1000.4 }), T0);
    history.record('w1', report(50), T0 + SECOND);
    expect(history.recent('w1', 10, T0 + SECOND)).to.deep.equal([
      { t: T0, cpu_load: 12.3, mem_used: 0.25, gpu_utilization: 40, gpu_memory_free_mb: 1000 },
      { t: T0 + SECOND, cpu_load: 50, mem_used: 0.25 },
    ]);
  });

  it('lists the newest samples over the minutes, oldest first, the one in progress included', () => {
    heartbeats(history, T0, T0 + 10 * MINUTE + 30 * SECOND, SECOND);
    const recent = history.recent('w1', 300, T0 + 10 * MINUTE + 30 * SECOND);
    expect(recent).to.have.length(300);
    expect(recent[0]!.t).to.equal(T0 + 10 * MINUTE + 30 * SECOND - 300 * SECOND);
    expect(recent.at(-1)!.t).to.equal(T0 + 10 * MINUTE + 29 * SECOND);
    expect(recent.every((sample, index) => index === 0 || sample.t - recent[index - 1]!.t === SECOND)).to.equal(true);
    expect(history.recent('other', 300, T0 + 10 * MINUTE)).to.deep.equal([]);
  });

  it('keeps the last hour at heartbeat resolution, older hours a point a minute, nothing past a week', () => {
    // three hours of heartbeats every 10 s: the load in each minute is the minute's number in its hour
    for (let at = T0; at < T0 + 3 * HOUR; at += 10 * SECOND) {
      history.record('w1', report(Math.floor((at - T0) / MINUTE) % 60), at);
      history.tick(at);
    }
    const now = T0 + 3 * HOUR;
    history.tick(now);
    // the first hour was folded once the second was over: one record of 60 points
    const hour = store.data.worker_hours[`w1/${T0}`]!;
    expect(hour.points.map((point) => point.t)).to.deep.equal(Array.from({ length: 60 }, (_, m) => T0 + m * MINUTE));
    expect(hour.points[7]!.cpu_load).to.equal(7);
    expect(Object.keys(store.data.worker_minutes).some((key) => Number(key.split('/')[1]) < T0 + HOUR)).to.equal(false);

    const { samples, minutes } = history.full('w1', now);
    // the last hour: every sample (6 a minute), from 2:01 on
    expect(samples[0]!.t).to.equal(T0 + 2 * HOUR + MINUTE);
    expect(samples.at(-1)!.t).to.equal(now - 10 * SECOND);
    expect(samples).to.have.length(59 * 6);
    // before it, one point per minute from the start: the mean of that minute's samples
    expect(minutes.map((point) => point.t)).to.deep.equal(Array.from({ length: 121 }, (_, m) => T0 + m * MINUTE));
    expect(minutes.map((point) => point.cpu_load)).to.deep.equal(Array.from({ length: 121 }, (_, m) => m % 60));

    // a week later with no heartbeat: the hours age out
    const later = now + KEPT_MS;
    history.tick(later);
    expect(store.data.worker_hours).to.deep.equal({});
    expect(store.data.worker_minutes).to.deep.equal({});
    expect(history.full('w1', later)).to.deep.equal({ samples: [], minutes: [] });
  });

  it('shows only the week: points older than a week are left out while the rest of their hour is kept', () => {
    heartbeats(history, T0, T0 + 3 * HOUR, MINUTE);
    const now = T0 + KEPT_MS + 30 * MINUTE;
    history.tick(now);
    expect(store.data.worker_hours[`w1/${T0}`]!.points, 'the first hour, half of it past the week').to.have.length(60);
    const { minutes } = history.full('w1', now);
    expect(minutes[0]!.t).to.equal(now - KEPT_MS);
    expect(minutes).to.have.length(150);
    history.tick(now + 30 * MINUTE);
    expect(store.data.worker_hours[`w1/${T0}`], 'all of it past the week').to.equal(undefined);
  });

  it('is there after a restart: what was written, and the minute in progress when the server closed', async () => {
    heartbeats(history, T0, T0 + 3 * MINUTE + 20 * SECOND, SECOND);
    const before = history.full('w1', T0 + 3 * MINUTE + 20 * SECOND);
    history.flush();
    await store.close();

    store = await openStore(dir.path);
    history = new WorkerHistory(store);
    expect(history.full('w1', T0 + 3 * MINUTE + 20 * SECOND)).to.deep.equal(before);
    // the worker is back within the same minute: that minute goes on, its samples kept
    heartbeats(history, T0 + 3 * MINUTE + 25 * SECOND, T0 + 4 * MINUTE + SECOND, SECOND);
    const minute = store.data.worker_minutes[`w1/${T0 + 3 * MINUTE}`]!;
    expect(minute.samples).to.have.length(20 + 35);
  });

  it('loads a datastore from before it kept worker history', async () => {
    const old = path.join(dir.path, 'old');
    const lines = [{ dpip_snapshot: 1 }, { c: 'users', k: 'ann', v: user('ann') }, { end: 1 }];
    await mkdir(old, { mode: 0o700 });
    await writeFile(path.join(old, 'db.snapshot'), `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
    const reopened = await openStore(old);
    try {
      expect(reopened.data.users.ann?.username).to.equal('ann');
      expect([reopened.data.worker_minutes, reopened.data.worker_hours, reopened.data.worker_activity]).to.deep.equal([
        {},
        {},
        {},
      ]);
      const oldHistory = new WorkerHistory(reopened);
      heartbeats(oldHistory, T0, T0 + 2 * MINUTE, SECOND);
      await reopened.commit();
    } finally {
      await reopened.close();
    }
    const again = await openStore(old);
    expect(Object.keys(again.data.worker_minutes)).to.deep.equal([`w1/${T0}`]);
    await again.close();
  });
});
