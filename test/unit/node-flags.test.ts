import { expect } from 'chai';
import { localWorkerNodeFlags, missingNodeFlags, NODE_FLAGS, withNodeFlags } from '../../bin/node-flags.js';

describe("the programs' node flags", () => {
  it('are added to the flags a launcher was given', () => {
    expect(withNodeFlags('dpip', ['--cpu-prof'])).to.deep.equal(['--cpu-prof', ...NODE_FLAGS.dpip]);
    expect(withNodeFlags('dpip', [])).to.deep.equal([...NODE_FLAGS.dpip]);
    expect(withNodeFlags('dpip-worker', [])).to.deep.equal([...NODE_FLAGS['dpip-worker']]);
  });

  it("keep a user's own value of the same flag, however it is spelled", () => {
    expect(withNodeFlags('dpip', ['--initial-old-space-size=512'])).to.deep.equal(['--initial-old-space-size=512']);
    expect(withNodeFlags('dpip', ['--initial_old_space_size=64'])).to.deep.equal(['--initial_old_space_size=64']);
    expect(withNodeFlags('dpip-worker', ['--initial-old-space-size=32'])).to.deep.equal([
      '--initial-old-space-size=32',
    ]);
  });

  it("give the server's local workers its other flags and their own, not the server's own", () => {
    expect(localWorkerNodeFlags(['--cpu-prof', ...NODE_FLAGS.dpip, '--trace-gc'])).to.deep.equal([
      '--cpu-prof',
      '--trace-gc',
      ...NODE_FLAGS['dpip-worker'],
    ]);
    // a value the user chose for the server is the user's: the workers get it too
    expect(localWorkerNodeFlags(['--initial-old-space-size=256'])).to.deep.equal(['--initial-old-space-size=256']);
  });
});

describe('the node flags a program was started without', () => {
  it('are all of them for a bare start, none when given in the node flags or NODE_OPTIONS', () => {
    expect(missingNodeFlags('dpip', [])).to.deep.equal([...NODE_FLAGS.dpip]);
    expect(missingNodeFlags('dpip', [...NODE_FLAGS.dpip])).to.deep.equal([]);
    expect(missingNodeFlags('dpip', [], '--max-http-header-size=8192  --initial-old-space-size=64')).to.deep.equal([]);
    expect(missingNodeFlags('dpip-worker', ['--initial_old_space_size=300'], '')).to.deep.equal([]);
    expect(missingNodeFlags('dpip-worker', [])).to.deep.equal([...NODE_FLAGS['dpip-worker']]);
  });
});
