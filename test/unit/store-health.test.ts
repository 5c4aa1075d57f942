import { expect } from 'chai';
import { createLogger } from '../../common/log.js';
import { ImageStoreUnavailable, LocalImageStore } from '../../controller/image-store/index.js';
import { StoreHealth, watchedStore } from '../../controller/store-health.js';

const log = createLogger('test', 'silent');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A probe that fails while `down` is true, and counts its calls. */
function switchableProbe(): { probe: () => Promise<void>; calls: () => number; set(down: boolean): void } {
  let down = false;
  let calls = 0;
  return {
    probe: async () => {
      calls += 1;
      if (down) throw new ImageStoreUnavailable('probe');
    },
    calls: () => calls,
    set: (value) => {
      down = value;
    },
  };
}

describe('the image store health', () => {
  it('a failure marks it down; probes bring it back by themselves and wake the scheduler once', async () => {
    const store = switchableProbe();
    let woken = 0;
    const health = new StoreHealth(store.probe, () => (woken += 1), log);
    try {
      store.set(true);
      health.failed('test outage');
      expect(health.available).to.equal(false);
      expect(health.downSince).to.be.greaterThan(0);
      await sleep(700);
      expect(store.calls(), 'probed once after 0.5 s').to.equal(1);
      expect(health.available).to.equal(false);
      store.set(false);
      await sleep(1200);
      expect(health.available).to.equal(true);
      expect(woken).to.equal(1);
    } finally {
      health.close();
    }
  });

  it("a worker's report is checked first: a store that answers the server stays up", async () => {
    const store = switchableProbe();
    const health = new StoreHealth(store.probe, () => undefined, log);
    try {
      health.suspect('worker w1: connection refused');
      await sleep(20);
      expect(store.calls()).to.equal(1);
      expect(health.available).to.equal(true);
      store.set(true);
      health.suspect('worker w1: connection refused');
      await sleep(20);
      expect(health.available, 'down for the server too').to.equal(false);
    } finally {
      health.close();
    }
  });

  it('the watched store reports its unavailability on the way to the caller, and only that', async () => {
    let failures = 0;
    const health = new StoreHealth(
      async () => undefined,
      () => undefined,
      log,
    );
    health.failed = () => {
      failures += 1;
    };
    // a folder under a file, which cannot be made (a file-system error, not an outage); its reads fail as an
    // outage does
    class Unreachable extends LocalImageStore {
      override open(): Promise<never> {
        return Promise.reject(new ImageStoreUnavailable('reading'));
      }
    }
    const watched = watchedStore(new Unreachable('/etc/hostname/images'), health);
    try {
      await watched.open('w/a.png').then(
        () => expect.fail('opened'),
        (error: unknown) => expect(error).to.be.instanceOf(ImageStoreUnavailable),
      );
      expect(failures).to.equal(1);
      await watched.put({ kind: 'memory', data: Buffer.from('x') }, 'w/a.png', 'image/png').then(
        () => expect.fail('put'),
        (error: unknown) => expect(error).not.to.be.instanceOf(ImageStoreUnavailable),
      );
      expect(failures, 'a file-system error is not an outage').to.equal(1);
    } finally {
      health.close();
    }
  });
});
