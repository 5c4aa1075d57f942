import { expect } from 'chai';
import { FailureBackoff, FORGET_AFTER_MS, parseLoginBackoff } from '../../api/login-backoff.js';

describe('login backoff: failures in a row space out the next attempts', () => {
  let now: number;
  const clock = () => now;
  const policy = { failures: 3, firstDelayMs: 1000, maxDelayMs: 15 * 60_000 };

  beforeEach(() => {
    now = 1_000_000;
  });

  function fail(backoff: FailureBackoff, key: string): void {
    expect(backoff.wait(key), `${key} may try`).to.equal(0);
    backoff.begin(key);
    backoff.failed(key);
  }

  it('lets the first failures through at once, then waits 1 s, 2 s, 4 s ... up to the longest', () => {
    const backoff = new FailureBackoff(policy, 100, clock);
    fail(backoff, 'alice');
    fail(backoff, 'alice');
    fail(backoff, 'alice');
    const waits: number[] = [];
    for (let index = 0; index < 14; index++) {
      const wait = backoff.wait('alice');
      waits.push(wait);
      now += wait - 1;
      expect(backoff.wait('alice'), 'a millisecond early').to.equal(1);
      now += 1;
      fail(backoff, 'alice');
    }
    expect(waits).to.deep.equal([
      1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000, 900_000, 900_000, 900_000, 900_000,
    ]);
    expect(backoff.wait('bob'), 'other keys are not affected').to.equal(0);
  });

  it('starts afresh after a success', () => {
    const backoff = new FailureBackoff(policy, 100, clock);
    for (let index = 0; index < 3; index++) fail(backoff, 'alice');
    now += backoff.wait('alice');
    backoff.begin('alice');
    backoff.succeeded('alice');
    expect(backoff.size).to.equal(0);
    fail(backoff, 'alice');
    fail(backoff, 'alice');
    fail(backoff, 'alice');
    expect(backoff.wait('alice')).to.equal(1000);
  });

  it('counts attempts still being checked: parallel attempts cannot slip past the threshold', () => {
    const backoff = new FailureBackoff(policy, 100, clock);
    fail(backoff, 'alice');
    fail(backoff, 'alice');
    backoff.begin('alice'); // the third, its password being hashed
    expect(backoff.wait('alice')).to.equal(1000);
    backoff.failed('alice');
    expect(backoff.wait('alice')).to.equal(1000);
    now += 1000;
    backoff.begin('alice');
    expect(backoff.wait('alice'), 'one attempt at a time inside the backoff').to.equal(2000);
    backoff.abandoned('alice'); // no password was checked after all
    expect(backoff.wait('alice')).to.equal(0);
  });

  it('forgets a streak after a day without failures', () => {
    const backoff = new FailureBackoff(policy, 100, clock);
    for (let index = 0; index < 3; index++) fail(backoff, 'alice');
    now += FORGET_AFTER_MS + 1;
    expect(backoff.wait('alice')).to.equal(0);
    fail(backoff, 'alice');
    expect(backoff.wait('alice'), 'one failure of a new streak').to.equal(0);
  });

  it('keeps at most maxKeys streaks, and a flood of fresh names does not wipe a streak that is backing off', () => {
    const backoff = new FailureBackoff(policy, 100, clock);
    for (let index = 0; index < 3; index++) fail(backoff, 'alice');
    for (let index = 0; index < 10_000; index++) fail(backoff, `made-up-${index}`);
    expect(backoff.size).to.be.at.most(100);
    expect(backoff.wait('alice')).to.equal(1000);
  });

  it('reads the failures it starts after, or off', () => {
    expect(parseLoginBackoff('5', 900_000)).to.deep.equal({ failures: 5, firstDelayMs: 1000, maxDelayMs: 900_000 });
    expect(parseLoginBackoff('off', 900_000)).to.equal(null);
    expect(parseLoginBackoff('0', 900_000)).to.equal(null);
    for (const bad of ['-1', 'five', '1001', '2.5']) expect(() => parseLoginBackoff(bad, 900_000)).to.throw(/backoff/);
  });
});
