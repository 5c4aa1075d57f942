import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createTokens, type Tokens } from '../../controller/tokens.js';
import { openStore, type Store } from '../../controller/store/index.js';
import { makeDirs, type TestDirs } from '../helpers/system.js';

describe('tokens: a token checked once is still refused once it expires or is revoked', () => {
  let dirs: TestDirs;
  let store: Store;
  let tokens: Tokens;

  before(async () => {
    dirs = await makeDirs();
    store = await openStore(dirs.dataDir);
    tokens = createTokens(store, randomBytes(48), { user: 1, worker: 600 });
  });

  after(async () => {
    await store.close();
    await dirs.remove();
  });

  it('refuses a token that was accepted before, after its expiry', async function () {
    this.timeout(5000);
    const { token } = tokens.issue('alice', 'user');
    expect(tokens.verify(token)?.sub).to.equal('alice');
    expect(tokens.verify(token)?.sub, 'accepted again').to.equal('alice');
    await new Promise((resolve) => setTimeout(resolve, 2100)); // exp is in whole seconds
    expect(tokens.verify(token)).to.equal(null);
  });

  it('refuses a token that was accepted before, after it is revoked', async () => {
    const { token, claims } = tokens.issue('some-worker', 'worker');
    expect(tokens.verify(token)?.scope).to.equal('worker');
    await tokens.revoke(claims);
    expect(tokens.verify(token)).to.equal(null);
  });

  it('refuses a token whose signature was changed after the real one was accepted', () => {
    const { token } = tokens.issue('bob', 'worker');
    expect(tokens.verify(token)).to.not.equal(null);
    const at = token.length - 10; // inside the signature
    const forged = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
    expect(tokens.verify(forged)).to.equal(null);
  });
});
