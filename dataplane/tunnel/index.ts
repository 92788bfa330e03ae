export { Session, type SessionOptions, type SessionEvents } from './session';
export { TunnelStream } from './stream';
export { TunnelError, isTunnelError, type TunnelErrorCode } from './errors';
export { WebSocketTransport } from './ws-transport';
export type { Transport, TransportHandler } from './transport';
