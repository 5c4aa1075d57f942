import type { Socket } from 'nanomsg';
import { bindOrThrow, closeSocket, openSocket, sendOn } from './sockets.js';

export interface Publisher {
  publish(method: string, params: unknown): void;
  close(): void;
}

/** Best-effort announcements: nanomsg drops them for slow or absent subscribers. */
export function bindPublisher(address: string): Publisher {
  const socket = openSocket('pub');
  bindOrThrow(socket, address);
  return {
    publish(method, params) {
      sendOn(socket, JSON.stringify({ jsonrpc: '2.0', method, params }));
    },
    close: () => closeSocket(socket),
  };
}

export interface Subscriber {
  close(): void;
}

export function subscribe(address: string, onMessage: (method: string, params: unknown) => void): Subscriber {
  const socket: Socket = openSocket('sub');
  socket.connect(address);
  socket.on('data', (message: Buffer) => {
    let payload: unknown;
    try {
      payload = JSON.parse(message.toString('utf8'));
    } catch {
      return;
    }
    if (typeof payload === 'object' && payload !== null && 'method' in payload && typeof payload.method === 'string') {
      onMessage(payload.method, 'params' in payload ? payload.params : undefined);
    }
  });
  return { close: () => closeSocket(socket) };
}
