// Types for the parts of the `nanomsg` node binding this project uses.
declare module 'nanomsg' {
  import type { EventEmitter } from 'node:events';
  export type SocketType = 'pub' | 'sub' | 'req' | 'rep' | 'pair' | 'push' | 'pull' | 'surveyor' | 'respondent' | 'bus';
  export interface SocketOptions {
    linger?: number;
    sndtimeo?: number;
    rcvtimeo?: number;
    reconn?: number;
    maxreconn?: number;
    rcvmaxsize?: number;
    tcpnodelay?: boolean;
    chan?: string[];
  }
  export interface Socket extends EventEmitter {
    bind(address: string): number | null;
    connect(address: string): number | null;
    send(message: Buffer | string): number;
    close(): number;
    // no `closed`: the binding's flag never turns true on current Node (see sockets.ts, isOpen)
    chan(channels: string[]): void;
    on(event: 'data', listener: (message: Buffer) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
  export function socket(type: SocketType, options?: SocketOptions): Socket;
  const nano: { socket: typeof socket };
  export default nano;
}
