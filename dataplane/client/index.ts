/**
 * The piko-k8s client SDK: register endpoints with a Piko server (`listen`)
 * and open raw TCP connections to endpoints (`dial`). Wire compatible with
 * Piko's Go SDK and servers.
 */
export {
  listen,
  Listener,
  type CloseOptions,
  type Connection,
  type ListenOptions,
  type ListenerEvents,
  type ReconnectInfo,
} from './listener';
export { dial, type DialOptions } from './dial';
export { TokenFile, type TokenFileEvents, type TokenFileOptions } from './token-file';
export { serve } from './serve';
export { ClientError, isClientError, type ClientErrorCode } from './errors';
export type { ClientLogger } from './client-logger';
