import { expect } from 'chai';
import {
  missingServerNodeFlags,
  SERVER_NODE_FLAGS,
  withoutServerNodeFlags,
  withServerNodeFlags,
} from '../../bin/server-node-flags.js';

describe("the server's node flags", () => {
  it('are added to the flags a launcher was given', () => {
    expect(withServerNodeFlags(['--cpu-prof'])).to.deep.equal(['--cpu-prof', ...SERVER_NODE_FLAGS]);
    expect(withServerNodeFlags([])).to.deep.equal([...SERVER_NODE_FLAGS]);
  });

  it("keep a user's own value of the same flag, however it is spelled", () => {
    expect(withServerNodeFlags(['--initial-old-space-size=512'])).to.deep.equal(['--initial-old-space-size=512']);
    expect(withServerNodeFlags(['--initial_old_space_size=64'])).to.deep.equal(['--initial_old_space_size=64']);
  });

  it("are taken out of what the server's workers inherit, and nothing else is", () => {
    expect(withoutServerNodeFlags(['--cpu-prof', ...SERVER_NODE_FLAGS, '--trace-gc'])).to.deep.equal([
      '--cpu-prof',
      '--trace-gc',
    ]);
  });
});

describe("the server's node flags it was started without", () => {
  it('are all of them for a bare start, none when given in the node flags or NODE_OPTIONS', () => {
    expect(missingServerNodeFlags([])).to.deep.equal([...SERVER_NODE_FLAGS]);
    expect(missingServerNodeFlags([...SERVER_NODE_FLAGS])).to.deep.equal([]);
    expect(missingServerNodeFlags([], '--max-http-header-size=8192  --initial-old-space-size=64')).to.deep.equal([]);
    expect(missingServerNodeFlags(['--initial_old_space_size=300'], '')).to.deep.equal([]);
  });
});
