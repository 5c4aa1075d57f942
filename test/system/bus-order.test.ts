// The bus sends a message at once when the socket would take it, and leaves it to the binding's queue when it
// would not (or when others wait there): either way, messages arrive in the order they were sent, and a reply
// socket keeps answering. Real nanomsg sockets on loopback.
import { expect } from 'chai';
import { z } from 'zod';
import { bindPublisher, connectRpc, method, serveRpc, subscribe } from '../../common/bus/index.js';
import { freePorts } from '../helpers/ports.js';
import { waitFor } from '../helpers/processes.js';

describe('the bus: messages in the order they were sent', function () {
  this.timeout(30_000);

  it('a burst of announcements reaches a subscriber in order, none twice', async () => {
    const address = `tcp://127.0.0.1:${await freePorts()}`;
    const publisher = bindPublisher(address);
    const seen: number[] = [];
    let joined = false;
    let ended = false;
    const subscriber = subscribe(address, (name, params) => {
      if (name === 'hello') joined = true;
      else if (name === 'end') ended = true;
      else if (name === 'seq') seen.push(z.number().parse(params));
    });
    try {
      // a subscriber hears only what is sent once it has joined
      await waitFor('the subscriber to join', async () => {
        publisher.publish('hello', null);
        return joined;
      });
      const COUNT = 20_000;
      for (let seq = 0; seq < COUNT; seq++) publisher.publish('seq', seq);
      // and what follows it arrives after it
      await waitFor('the burst to arrive', async () => {
        publisher.publish('end', null);
        return ended;
      });
      // a publisher drops what a subscriber that falls behind cannot take (about two thirds of this burst
      // here), and never reorders or repeats
      expect(seen.length).to.be.greaterThan(0);
      for (let index = 1; index < seen.length; index++) expect(seen[index]).to.be.greaterThan(seen[index - 1]!);
    } finally {
      subscriber.close();
      publisher.close();
    }
  });

  it('a reply socket answers each of many calls, each with its own answer', async () => {
    const address = `tcp://127.0.0.1:${await freePorts()}`;
    const server = serveRpc(
      address,
      { echo: method(z.object({ n: z.number() }), ({ n }) => ({ n })) },
      () => undefined,
    );
    const client = connectRpc(address);
    try {
      const answers = await Promise.all(
        Array.from({ length: 500 }, (_, n) => client.call('echo', { n }, z.object({ n: z.number() }))),
      );
      expect(answers.map(({ n }) => n)).to.deep.equal(Array.from({ length: 500 }, (_, n) => n));
    } finally {
      client.close();
      server.close();
    }
  });
});
