// The ranged GET the S3 store inspects objects with, against a real HTTP server on loopback that drops a kept-alive
// connection as a request arrives on it: what any store does when it closes an idle connection at the moment the
// server sends on it. The request goes again on a new connection, once it is sure to have failed on an old one.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { RangedGet } from '../../controller/image-store/s3-ranged-get.js';

const OBJECT = Buffer.from('0123456789');

describe('the S3 store ranged GET on kept-alive connections', () => {
  let server: http.Server | null = null;
  let ranged: RangedGet | null = null;
  /** Requests each connection has carried. */
  const carried = new Map<Socket, number>();
  let dropReused = true;
  let connections = 0;

  beforeEach(async () => {
    carried.clear();
    connections = 0;
    dropReused = true;
    server = http.createServer((request, response) => {
      const socket = request.socket;
      const count = (carried.get(socket) ?? 0) + 1;
      carried.set(socket, count);
      // the store closed this idle connection just as the request went out on it
      if (count > 1 && dropReused) return void socket.destroy();
      response.writeHead(206, { 'content-range': `bytes 0-3/${OBJECT.length}`, 'content-length': 4 });
      response.end(OBJECT.subarray(0, 4));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    ranged = new RangedGet(2000, 5000);
  });

  afterEach(async () => {
    ranged?.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  const url = (): string => `http://127.0.0.1:${(server!.address() as AddressInfo).port}/bucket/key`;

  it('a kept-alive connection the store dropped: the GET goes again on a new one, and gets the object', async () => {
    const first = await ranged!.head(url(), 4, 'inspecting key');
    expect(first).to.deep.equal({ size: 10, head: OBJECT.subarray(0, 4) });
    const second = await ranged!.head(url(), 4, 'inspecting key');
    expect(second).to.deep.equal({ size: 10, head: OBJECT.subarray(0, 4) });
    expect(connections, 'a second connection, for the GET sent again').to.equal(2);
  });

  it('a store that drops a new connection too is unavailable (no endless retries)', async () => {
    await ranged!.head(url(), 4, 'inspecting key');
    server!.removeAllListeners('request');
    server!.on('request', (request: http.IncomingMessage) => request.socket.destroy());
    const failure = await ranged!.head(url(), 4, 'inspecting key').catch((error: unknown) => error);
    expect(String(failure)).to.match(/image store is unavailable \(inspecting key: ECONNRESET\)/);
    expect(connections, 'the kept one, then one new connection').to.equal(2);
  });

  it('a connection kept alive and still open carries the next GET (no new connection)', async () => {
    dropReused = false;
    for (let index = 0; index < 3; index++) await ranged!.head(url(), 4, 'inspecting key');
    expect(connections).to.equal(1);
  });
});
