import { availableParallelism } from 'node:os';
import { expect } from 'chai';
import { sharedEngineThreads } from '../../bin/local-workers.js';
import { MAX_CONTROLLERS, parseControllers, parseWorkerArgs } from '../../bin/worker-cli.js';
import { parseServerArgs } from '../../bin/server-cli.js';
import { learnJobMs, prefetchFor, type PrefetchSetting } from '../../worker/prefetch.js';

function controllersOf(value: string, env: NodeJS.ProcessEnv = {}): { host: string; port: number }[] {
  const args = value === '' ? [] : ['--controller', value];
  return parseWorkerArgs([...args, '--worker-name', 'w', '--secret', 's'], env).controllers;
}

/** What `read` gives with `name` set in the process environment (yargs reads DPIP_* from there, as the commands do). */
function withEnv<T>(name: string, value: string, read: () => T): T {
  process.env[name] = value;
  try {
    return read();
  } finally {
    delete process.env[name];
  }
}

function refusal(value: string): string {
  try {
    parseControllers(value);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return expect.fail(`expected "${value}" to be refused`);
}

describe('the worker flag --controller', () => {
  it('takes one host:port, as before', () => {
    expect(controllersOf('server-a:40899')).to.deep.equal([{ host: 'server-a', port: 40899 }]);
    expect(controllersOf('[::1]:40899')).to.deep.equal([{ host: '::1', port: 40899 }]);
    expect(controllersOf('10.0.0.7:1')).to.deep.equal([{ host: '10.0.0.7', port: 1 }]);
  });

  it('is localhost:40899 unless given', () => {
    expect(controllersOf('')).to.deep.equal([{ host: 'localhost', port: 40899 }]);
  });

  it('takes a comma-separated list, in its order, spaces around the commas allowed', () => {
    expect(controllersOf('a.example:40899, 10.0.0.2:40999,[fe80::1%eth0]:40899')).to.deep.equal([
      { host: 'a.example', port: 40899 },
      { host: '10.0.0.2', port: 40999 },
      { host: 'fe80::1%eth0', port: 40899 },
    ]);
  });

  it('takes the list from DPIP_CONTROLLER', () => {
    // yargs reads DPIP_* from the process environment, as the dpip-worker command does
    process.env.DPIP_CONTROLLER = 'a:40899,b:40899';
    try {
      expect(controllersOf('', process.env)).to.deep.equal([
        { host: 'a', port: 40899 },
        { host: 'b', port: 40899 },
      ]);
    } finally {
      delete process.env.DPIP_CONTROLLER;
    }
  });

  for (const [value, entry, why] of [
    ['a:40899,b', 'b', /is not host:port/],
    ['a:40899,,b:40899', '', /is empty/],
    ['a:40899,', '', /is empty/],
    ['a:0', 'a:0', /port out of 1-65535/],
    ['a:70000', 'a:70000', /port out of 1-65535/],
    ['a b:40899', 'a b:40899', /no valid host/],
    ['a:1:40899', 'a:1:40899', /no valid host.*brackets/],
    ['[a]:40899', '[a]:40899', /not an IPv6 address/],
  ] as const) {
    it(`refuses "${value}", naming the entry`, () => {
      const message = refusal(value);
      expect(message).to.include(`--controller: "${entry}"`).and.include(`(in "${value}")`);
      expect(message).to.match(why);
    });
  }

  it('refuses the same address twice', () => {
    expect(refusal('a:40899,b:40899,A:40899')).to.match(/"A:40899" is listed twice/);
    expect(refusal('[::1]:40899,::1:40899')).to.match(/"::1:40899" is listed twice/);
    // the same host on another port is another controller
    expect(parseControllers('a:40899,a:41899')).to.have.length(2);
  });

  it(`refuses more than ${MAX_CONTROLLERS} addresses`, () => {
    const list = (count: number): string => Array.from({ length: count }, (_, index) => `h${index}:40899`).join(',');
    expect(parseControllers(list(MAX_CONTROLLERS))).to.have.length(MAX_CONTROLLERS);
    expect(refusal(list(MAX_CONTROLLERS + 1))).to.match(/lists 17 addresses: at most 16/);
  });

  it('refuses a bad list before it starts: parseWorkerArgs throws', () => {
    expect(() => controllersOf('a:40899,a:40899')).to.throw(/listed twice/);
  });
});

describe('the worker flag --prefetch and the server flag --worker-prefetch', () => {
  const prefetchOf = (args: string[], env: NodeJS.ProcessEnv = {}): PrefetchSetting =>
    parseWorkerArgs(['--worker-name', 'w', '--secret', 's', ...args], env).prefetch;

  it('is auto unless given; 0 takes jobs only into free slots; DPIP_PREFETCH sets it', () => {
    expect(prefetchOf([])).to.equal('auto');
    expect(prefetchOf(['--prefetch', '0'])).to.equal(0);
    expect(prefetchOf(['--prefetch', '8'])).to.equal(8);
    expect(withEnv('DPIP_PREFETCH', '4', () => prefetchOf([], process.env))).to.equal(4);
  });

  for (const value of ['-1', '257', '1.5', 'many', '']) {
    it(`refuses --prefetch ${JSON.stringify(value)}`, () => {
      expect(() => prefetchOf(['--prefetch', value])).to.throw(
        /--prefetch must be "auto" or a whole number from 0 to 256/,
      );
    });
  }

  it("is the server's local workers' --prefetch: auto unless given, or from 0 to 256", async () => {
    const parse = (...flags: string[]) => parseServerArgs(['--secret', 'flag-test', ...flags], {});
    expect((await parse()).workerPrefetch).to.equal('auto');
    expect((await parse('--worker-prefetch', '0')).workerPrefetch).to.equal(0);
    const error = await parse('--worker-prefetch', '300').catch((caught: unknown) => caught);
    expect(String(error)).to.match(/--worker-prefetch/);
  });
});

describe('--prefetch auto', () => {
  it('takes one beyond the slots until a job has ended, then as many as the slots work through in about 20 ms', () => {
    expect(prefetchFor('auto', 1, null)).to.equal(1);
    expect(prefetchFor('auto', 1, 2), 'jobs of 2 ms: ten').to.equal(10);
    expect(prefetchFor('auto', 2, 5), 'two slots of 5 ms jobs: eight').to.equal(8);
    expect(prefetchFor('auto', 1, 0.01), 'at most 16').to.equal(16);
    expect(prefetchFor('auto', 1, 50), 'jobs of 50 ms or more: one').to.equal(1);
    expect(prefetchFor('auto', 4, 5000)).to.equal(1);
    expect(prefetchFor(3, 1, 2), 'a number is kept whatever the jobs take').to.equal(3);
    expect(prefetchFor(0, 1, 2)).to.equal(0);
  });

  it('goes by a moving typical length: one long job among short ones moves it a fifth of the way', () => {
    let typical = learnJobMs(null, 2);
    expect(typical).to.equal(2);
    for (let index = 0; index < 20; index++) typical = learnJobMs(typical, 2);
    typical = learnJobMs(typical, 102);
    expect(typical).to.be.closeTo(22, 1e-9);
    expect(prefetchFor('auto', 1, typical)).to.equal(1);
    for (let index = 0; index < 20; index++) typical = learnJobMs(typical, 2);
    expect(prefetchFor('auto', 1, typical), 'back to short jobs: back up').to.be.at.least(8);
  });
});

describe("the worker flag --engine-threads and the local workers' share of the cores", () => {
  const threadsOf = (args: string[], env: NodeJS.ProcessEnv = {}): number | null =>
    parseWorkerArgs(['--worker-name', 'w', '--secret', 's', ...args], env).engineThreads;

  it('is unset unless given (the cores shared among the slots); DPIP_ENGINE_THREADS sets it', () => {
    expect(threadsOf([])).to.equal(null);
    expect(threadsOf(['--engine-threads', '1'])).to.equal(1);
    expect(withEnv('DPIP_ENGINE_THREADS', '3', () => threadsOf([], process.env))).to.equal(3);
  });

  for (const value of ['0', '257', '1.5', 'many']) {
    it(`refuses --engine-threads ${value}`, () => {
      expect(() => threadsOf(['--engine-threads', value])).to.throw(
        /--engine-threads must be a whole number from 1 to 256/,
      );
    });
  }

  it("gives each local worker's job the machine's cores shared among every job they run at once, at least 1", () => {
    const cores = availableParallelism();
    expect(sharedEngineThreads(1, 1)).to.equal(cores);
    expect(sharedEngineThreads(2, 1)).to.equal(Math.max(1, Math.floor(cores / 2)));
    expect(sharedEngineThreads(cores, 2)).to.equal(1);
    expect(sharedEngineThreads(64, 256)).to.equal(1);
  });
});
