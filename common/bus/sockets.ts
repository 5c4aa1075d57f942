import nano, { type Socket, type SocketType } from 'nanomsg';

// Messages larger than this are dropped by nanomsg before they reach us (a hostile peer cannot make us buffer more).
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export function openSocket(type: SocketType): Socket {
  const socket = nano.socket(type, { linger: 200, rcvmaxsize: MAX_MESSAGE_BYTES, reconn: 100, maxreconn: 500, tcpnodelay: true });
  // nanomsg reports failures (e.g. a port in use) as 'error' events: without a listener they would crash the process.
  socket.on('error', () => undefined);
  return socket;
}

export function bindOrThrow(socket: Socket, address: string): void {
  let failure: Error | undefined;
  const onError = (error: Error): void => {
    failure = error;
  };
  socket.on('error', onError);
  const endpoint = socket.bind(address);
  socket.removeListener('error', onError);
  if (endpoint === null || endpoint === undefined || endpoint < 0 || failure) {
    throw new Error(`cannot bind ${address}: ${failure?.message ?? 'unknown error'}`);
  }
}

interface PollingSocket {
  _stopPollSend(): void;
  _stopPollReceive(): void;
}

/**
 * The binding's close() closes the nanomsg socket, and with it the descriptors libuv polls, while
 * libuv may still be closing its poll handles on them; a later poll can then abort the process
 * inside libuv. So polling stops first, and the socket is closed once libuv has let go of the handles.
 */
export function closeSocket(socket: Socket): void {
  if (socket.closed || closing.has(socket)) return;
  closing.add(socket);
  const polling = socket as unknown as PollingSocket;
  polling._stopPollSend();
  polling._stopPollReceive();
  setTimeout(() => {
    closing.delete(socket);
    socket.close();
  }, 0);
}

const closing = new WeakSet<Socket>();
