import { expect } from 'chai';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../common/units.js';

describe('durations and sizes on the command line', () => {
  it('reads durations in ms, s, m, h and d, and a bare number as milliseconds', () => {
    expect(parseDuration('500ms')).to.equal(500);
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('10m')).to.equal(600_000);
    expect(parseDuration('12h')).to.equal(43_200_000);
    expect(parseDuration('7d')).to.equal(604_800_000);
    expect(parseDuration('1.5s')).to.equal(1500);
    expect(parseDuration('2500')).to.equal(2500);
    expect(parseDuration(2500)).to.equal(2500);
  });

  it('reads sizes in binary multiples, with or without the i, and a bare number as bytes', () => {
    expect(parseSize('512MB')).to.equal(512 * 2 ** 20);
    expect(parseSize('10GB')).to.equal(10 * 2 ** 30);
    expect(parseSize('10GiB')).to.equal(10 * 2 ** 30);
    expect(parseSize('64kb')).to.equal(64 * 1024);
    expect(parseSize('1TB')).to.equal(2 ** 40);
    expect(parseSize('4096')).to.equal(4096);
  });

  it('refuses what it cannot read, with a message that shows how to write it', () => {
    for (const bad of ['', 'fast', '10 parsecs', '-5s', '5x', '1e3s']) {
      expect(() => parseDuration(bad), bad).to.throw(/write it as 500ms, 30s/);
    }
    for (const bad of ['', 'big', '10 PB', '-1MB']) expect(() => parseSize(bad), bad).to.throw(/write it as 512KB/);
    expect(() => parseSize('99999999999999TB')).to.throw(/too large/);
  });

  it('writes durations for people, as a flag takes them', () => {
    expect(formatDuration(0)).to.equal('0ms');
    expect(formatDuration(500)).to.equal('500ms');
    expect(formatDuration(1500)).to.equal('1.5s');
    expect(formatDuration(30_000)).to.equal('30s');
    expect(formatDuration(90_000)).to.equal('1.5m');
    expect(formatDuration(600_000)).to.equal('10m');
    expect(formatDuration(7 * 86_400_000)).to.equal('7d');
    for (const ms of [500, 1500, 30_000, 90_000, 600_000, 43_200_000])
      expect(parseDuration(formatDuration(ms))).to.equal(ms);
  });

  it('writes sizes for people', () => {
    expect(formatSize(12)).to.equal('12 bytes');
    expect(formatSize(20 * 1024)).to.equal('20 KB');
    expect(formatSize(1.5 * 2 ** 30)).to.equal('1.5 GB');
  });
});
