export {
  serveRpc,
  method,
  RpcError,
  RPC_UNAUTHORIZED,
  type RpcMethod,
  type RpcServer,
  type ServeOptions,
} from './rpc-server.js';
export { connectRpc, RpcCallError, type RpcClient } from './rpc-client.js';
export { bindPublisher, subscribe, type Publisher, type Subscriber } from './pubsub.js';
export { MAX_MESSAGE_BYTES } from './sockets.js';
