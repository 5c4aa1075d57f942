import nano, { type Socket, type SocketType } from 'nanomsg';

// Messages larger than this are dropped by nanomsg before they reach us (a hostile peer cannot make us buffer more).
// A socket may set a smaller limit (the controller's sockets do: see common/protocol.ts).
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export function openSocket(type: SocketType, maxMessageBytes = MAX_MESSAGE_BYTES): Socket {
  const socket = nano.socket(type, {
    linger: 200,
    rcvmaxsize: maxMessageBytes,
    reconn: 100,
    maxreconn: 500,
    tcpnodelay: true,
  });
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
 * Sockets closed or being closed by closeSocket(). The binding's own `closed` flag cannot tell: its
 * Socket is a stream.Duplex, whose `closed` is a getter on current Node, so the binding's
 * `this.closed = true` does nothing and the flag stays false for good.
 */
const shut = new WeakSet<Socket>();

export function isOpen(socket: Socket): boolean {
  return !shut.has(socket);
}

/**
 * Sends unless the socket is closed or closing; false when it was dropped. A send on a closed socket
 * makes the binding poll a descriptor nanomsg no longer has, and libuv aborts the process: every
 * send goes through here.
 */
export function sendOn(socket: Socket, message: string | Buffer): boolean {
  if (shut.has(socket)) return false;
  if (!sentAtOnce(socket as unknown as QueueingSocket, message)) socket.send(message);
  return true;
}

/** The binding's own parts that an immediate send uses (lib/index.js). */
interface QueueingSocket {
  binding: number;
  type: SocketType;
  queue: unknown[];
  _startPollReceive(): void;
}

const native = (nano as unknown as { _bindings: NativeBindings })._bindings;

interface NativeBindings {
  NN_DONTWAIT: number;
  Send(binding: number, message: string | Buffer, flags: number): number;
}

/**
 * The binding's send() queues the message, polls the socket for writing and sends on a later turn of the
 * loop: two epoll_ctl calls and a loop turn a message, about 0.05 ms of CPU a request and its reply. A send
 * that would not block goes now instead; one that would (nanomsg's EAGAIN), or one behind queued messages
 * (their order kept), is left to the binding's queue as before. A reply socket reads its next request only
 * after replying, as the binding's own send arranges.
 */
function sentAtOnce(socket: QueueingSocket, message: string | Buffer): boolean {
  if (socket.queue.length > 0) return false;
  if (socket.type === 'rep' || socket.type === 'surveyor') socket._startPollReceive();
  return native.Send(socket.binding, message, native.NN_DONTWAIT) >= 0;
}

/**
 * The binding's close() closes the nanomsg socket, and with it the descriptors libuv polls, while
 * libuv may still be closing its poll handles on them; a later poll can then abort the process
 * inside libuv. So polling stops first, and the socket is closed once libuv has let go of the handles.
 * Closing twice is a no-op (a second nn_close could hit a socket id already reused by another socket).
 */
export function closeSocket(socket: Socket): void {
  if (shut.has(socket)) return;
  shut.add(socket);
  const polling = socket as unknown as PollingSocket;
  polling._stopPollSend();
  polling._stopPollReceive();
  setTimeout(() => socket.close(), 0);
}
