import { createServer } from 'node:net';

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '0.0.0.0', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : null;
      server.close(() => resolve(bound));
    });
  });
}

/** A free port p such that p + 1 and p + 2 are free too (the controller binds all three). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await tryListen(0);
    if (port && port < 65534 && (await tryListen(port + 1)) && (await tryListen(port + 2))) return port;
  }
  throw new Error('no free port pair found');
}

export async function freePort(): Promise<number> {
  const port = await tryListen(0);
  if (!port) throw new Error('no free port');
  return port;
}

/** Below Linux's default ephemeral range (32768-60999): ports the kernel never hands to an outgoing connection. */
const FIXED_RANGE = { from: 20_000, to: 32_700 };
/** What freeFixedPorts gave out: [first, last] of each run of ports. */
const chosen: [number, number][] = [];

/**
 * A port p, with p + 1 ... p + count - 1, free now and outside the ephemeral range, and none of them given out
 * before: for a server started later on a port chosen ahead (a worker is told it first, a server started again
 * on its old ports). A port of the ephemeral range may meanwhile become the local port of any outgoing
 * connection; these cannot.
 */
export async function freeFixedPorts(count = 1): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIXED_RANGE.from + Math.floor(Math.random() * (FIXED_RANGE.to - FIXED_RANGE.from - count));
    const last = port + count - 1;
    // not one this process chose already for a server that has not bound it yet
    if (chosen.some(([from, to]) => port <= to && last >= from)) continue;
    let free = true;
    for (let offset = 0; offset < count && free; offset++) free = (await tryListen(port + offset)) !== null;
    if (free) {
      chosen.push([port, last]);
      return port;
    }
  }
  throw new Error(`no ${count} free consecutive ports below the ephemeral range`);
}
