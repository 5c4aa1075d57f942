import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/log.js';
import type { Controller } from '../controller/index.js';
import { createApp } from './app.js';
import type { ApiConfig } from './config.js';

export interface ApiServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startApi(controller: Controller, config: ApiConfig, log: Logger): Promise<ApiServer> {
  const server: Server = createServer({ requestTimeout: 120_000, headersTimeout: 20_000 }, createApp(controller, config, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port }, 'api listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
