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
