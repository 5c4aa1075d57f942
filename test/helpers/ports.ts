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

/** Below Linux's default ephemeral range (32768-60999): ports the kernel never hands to an outgoing connection. */
const FIXED_RANGE = { from: 20_000, to: 32_700 };
/** What freePorts gave out: [first, last] of each run of ports. */
const chosen: [number, number][] = [];

/**
 * A port p, with p + 1 ... p + count - 1 (a controller binds its port and the next two), free now, outside the
 * ephemeral range, and none of them given out before. A server binds its port some time after it is chosen
 * (a worker is told it first; a server is started again on its old ports): meanwhile a port of the ephemeral
 * range may become the local port of any outgoing connection, and these cannot.
 */
export async function freePorts(count = 1): Promise<number> {
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
